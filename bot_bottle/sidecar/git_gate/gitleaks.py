"""gitleaks, as a second opinion when it is on PATH (it is not in the sidecar image by default).

It runs over exactly the revisions the push adds, with ``--redact``, writing a JSON report to a
private temporary file; only rule, commit, file and line are read from it, never the match. When
it is installed but fails, the push is refused: a scanner that was asked and did not answer must
not count as a clean result.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence

from bot_bottle.sidecar.git_gate import proc
from bot_bottle.sidecar.git_gate.scan import GitFinding

TIMEOUT = 300.0


class GitleaksError(Exception):
    pass


def available() -> str | None:
    return shutil.which("gitleaks")


def run(
    rev_args: Sequence[str], *, repo_dir: str, env: Mapping[str, str] | None = None, binary: str | None = None
) -> list[GitFinding]:
    exe = binary or available()
    if exe is None or not rev_args:
        return []
    with tempfile.TemporaryDirectory(prefix="gitleaks-") as tmp:
        os.chmod(tmp, 0o700)
        report = os.path.join(tmp, "report.json")
        common = [
            f"--log-opts={' '.join(rev_args)}", "--report-format=json", f"--report-path={report}",
            "--redact", "--no-banner", "--exit-code=0", "--log-level=error",
        ]
        # v8.19+ names the git mode "git"; older v8 releases only know "detect --source".
        attempts = ([exe, "git", *common, repo_dir], [exe, "detect", f"--source={repo_dir}", *common])
        last = ""
        for argv in attempts:
            # Killed with the gits it runs when late: proc.TimedOut, and the hook refuses the push.
            result = proc.run(argv, env=env, timeout=TIMEOUT)
            if result.returncode == 0 and os.path.exists(report):
                return parse_report(report)
            last = f"exit status {result.returncode}"
        raise GitleaksError(f"gitleaks failed ({last})")


def parse_report(path: str) -> list[GitFinding]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise GitleaksError("gitleaks wrote an unreadable report") from exc
    if data is None:
        return []
    if not isinstance(data, list):
        raise GitleaksError("gitleaks wrote an unexpected report")
    findings = []
    for item in data:
        if not isinstance(item, dict):
            continue
        line = item.get("StartLine")
        findings.append(
            GitFinding(
                commit=str(item.get("Commit") or "?"),
                kind="lines",
                detector=f"gitleaks:{item.get('RuleID') or 'unknown'}",
                path=str(item.get("File") or "?"),
                line=line if isinstance(line, int) else None,
            )
        )
    return findings
