"""Throwaway repositories for git-gate tests: a work repo, its bare upstream and the gate's mirror
of it, and the pre-receive hook run on what the work repo pushes.

``push_repos(test)`` makes them in a temporary folder the test cleans up; every git runs with a
fixed identity and no system or user config. ``PushRepos.hook`` fetches what the work repo has
into the mirror (where receive-pack's quarantine would hold a push's objects) and runs the hook
on the given update lines, returning its exit code and what it printed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import tempfile
import unittest
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from bot_bottle.sidecar.git_gate import hook
from bot_bottle.sidecar.git_gate.config import GateConfig, parse
from bot_bottle.sidecar.git_gate.mirror import HOOK_ENV_VERDICT


def git_env(home: Path) -> dict[str, str]:
    """The environment every test git runs in: a fixed identity, no system or user config."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "T",
            "GIT_COMMITTER_EMAIL": "t@x"}


@dataclass
class PushRepos:
    dir: Path
    env: dict[str, str]
    upstream: Path
    mirror: Path
    work: Path
    config: GateConfig
    verdict: Path
    base: str = ""  # the first commit, already upstream

    def git(self, *args: str, data: bytes | None = None) -> str:
        result = subprocess.run(["git", *args], input=data, env=self.env, capture_output=True, check=True)
        return result.stdout.decode("utf-8", "replace").strip()

    def commit(self, files: Mapping[str, bytes | str], message: str) -> str:
        """A commit in the work repo writing ``files`` (text is written as UTF-8); its id."""
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            (self.work / name).write_bytes(data)
            self.git("-C", str(self.work), "add", "--", name)
        self.git("-C", str(self.work), "commit", "-q", "-m", message)
        return self.git("-C", str(self.work), "rev-parse", "HEAD")

    def hook(self, lines: str, detector: Any, extra_env: Mapping[str, str] | None = None,
             **kwargs: Any) -> tuple[int, str]:
        """The hook on update ``lines`` ("old new ref" each), the work repo's branches and tags
        fetched into the mirror first and their refs dropped again (only the objects stay).
        ``extra_env`` goes to the hook's environment only (the fetch runs without it), and
        ``kwargs`` to ``hook.run``."""
        self.git("-C", str(self.mirror), "fetch", "-q", str(self.work),
                 "+refs/heads/*:refs/incoming/heads/*", "+refs/tags/*:refs/incoming/tags/*")
        refs = self.git("-C", str(self.mirror), "for-each-ref", "--format=%(refname)", "refs/incoming/")
        for ref in refs.split():
            self.git("-C", str(self.mirror), "update-ref", "-d", ref)
        env = {**self.env, **(extra_env or {}), "GIT_DIR": str(self.mirror), HOOK_ENV_VERDICT: str(self.verdict)}
        kwargs.setdefault("supervise_root", self.dir / "no-supervise")
        stderr = io.StringIO()
        with mock.patch.dict(os.environ, env, clear=True), contextlib.redirect_stderr(stderr):
            code = hook.run(self.config, self.config.repos[0], lines, detector, **kwargs)
        return code, stderr.getvalue()

    def push_main(self, new: str, detector: Any) -> tuple[int, str]:
        """The hook on an update of main from ``base`` to ``new``."""
        return self.hook(f"{self.base} {new} refs/heads/main\n", detector)

    def verdict_doc(self) -> dict[str, Any]:
        return json.loads(self.verdict.read_text())

    def upstream_rev(self, ref: str = "main") -> str:
        return self.git("--git-dir", str(self.upstream), "rev-parse", ref)


def push_repos(test: unittest.TestCase, first: Mapping[str, bytes | str] | None = None) -> PushRepos:
    """A work repo with one commit (``first``, or a README), pushed to its upstream, which the
    gate's mirror is a clone of; removed when ``test`` ends."""
    tmp = tempfile.TemporaryDirectory()
    test.addCleanup(tmp.cleanup)
    root = Path(tmp.name)
    upstream = root / "upstream.git"
    repos = PushRepos(dir=root, env=git_env(root), upstream=upstream, mirror=root / "mirror.git", work=root / "work",
                      config=parse({"repos": [{"name": "app", "url": str(upstream)}]}), verdict=root / "verdict.json")
    repos.git("init", "-q", "--bare", "-b", "main", str(upstream))
    repos.git("init", "-q", "-b", "main", str(repos.work))
    repos.base = repos.commit(first or {"README": "hello\n"}, "init")
    repos.git("-C", str(repos.work), "push", "-q", str(upstream), "main")
    repos.git("clone", "-q", "--mirror", str(upstream), str(repos.mirror))
    return repos
