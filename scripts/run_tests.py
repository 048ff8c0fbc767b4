"""Run the unittest suites and end with one machine-readable summary line.

Usage: ``python scripts/run_tests.py [FOLDER | FILE | DOTTED.NAME ...]`` (default ``tests``),
from the repository root. Folders are discovered like ``python -m unittest discover -t . -s
FOLDER -v``. The last line printed is always ``N passed, N failed`` (plus ``, N skipped`` when
any were skipped) so CI logs and scripts can read the outcome without parsing unittest's prose.
Errors and unexpected successes count as failed; expected failures count as passed.
The exit code is non-zero when anything failed or when no test ran at all (a typo in a folder
name must not look like a green run).
"""

from __future__ import annotations

import os
import sys
import unittest
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from unittest.case import _SubTest

# Worst outcome wins when one test reports several (subtests, or a failing tearDown after a pass).
_RANK = {"passed": 0, "skipped": 1, "failed": 2}

EXIT_FAILED = 1
EXIT_NO_TESTS = 5  # the code pytest uses for "no tests collected"


@dataclass(frozen=True)
class Summary:
    passed: int
    failed: int
    skipped: int

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped

    def line(self) -> str:
        text = f"{self.passed} passed, {self.failed} failed"
        if self.skipped:
            text += f", {self.skipped} skipped"
        return text

    def exit_code(self) -> int:
        if self.failed:
            return EXIT_FAILED
        if self.total == 0:
            return EXIT_NO_TESTS
        return 0


class CountingResult(unittest.TextTestResult):
    """unittest's verbose result that also keeps one outcome per test id.

    unittest's own counters cannot give the summary: ``testsRun`` misses class and module
    fixture errors, and one test with two failing subtests adds two failures.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outcomes: dict[str, str] = {}

    def _record(self, test: Any, outcome: str) -> None:
        key = test.id()
        previous = self.outcomes.get(key)
        if previous is None or _RANK[outcome] > _RANK[previous]:
            self.outcomes[key] = outcome

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self._record(test, "passed")

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addFailure(test, err)
        self._record(test, "failed")

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        super().addError(test, err)
        self._record(test, "failed")

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        # A skipped subtest does not make its parent test skipped: the parent's own outcome
        # (passed or failed) is what counts.
        if not isinstance(test, _SubTest):
            self._record(test, "skipped")

    def addExpectedFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self._record(test, "passed")

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        super().addUnexpectedSuccess(test)
        self._record(test, "failed")

    def addSubTest(self, test: unittest.TestCase, subtest: unittest.TestCase, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            # A failing subtest fails its parent test; the parent's own addSuccess cannot
            # lower that because the worst outcome wins.
            self._record(test, "failed")

    def summary(self) -> Summary:
        values = list(self.outcomes.values())
        return Summary(
            passed=values.count("passed"),
            failed=values.count("failed"),
            skipped=values.count("skipped"),
        )


def load(targets: list[str], top_level: Path) -> unittest.TestSuite:
    """A suite for each target: folders are discovered, files and dotted names loaded directly."""
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for target in targets:
        path = Path(target)
        if path.is_dir():
            suite.addTests(loader.discover(start_dir=str(path), top_level_dir=str(top_level)))
        elif path.suffix == ".py" and path.is_file():
            relative = path.resolve().relative_to(top_level.resolve()).with_suffix("")
            suite.addTests(loader.loadTestsFromName(".".join(relative.parts)))
        else:
            suite.addTests(loader.loadTestsFromName(target))
    # Discovery records import errors on the loader and as failing placeholder tests; the
    # placeholders run below and count as failed.
    return suite


def run(targets: list[str], *, stream: TextIO | None = None, top_level: Path | None = None) -> Summary:
    out = stream if stream is not None else sys.stdout
    top = top_level if top_level is not None else Path.cwd()
    if str(top) not in sys.path:
        sys.path.insert(0, str(top))
    suite = load(targets, top)
    runner = unittest.TextTestRunner(stream=out, verbosity=2, resultclass=CountingResult)
    result = runner.run(suite)
    assert isinstance(result, CountingResult)
    return result.summary()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    targets = args or ["tests"]
    # Tests print to both streams; everything the runner writes goes to stdout so the summary
    # really is the last line when the two are merged.
    summary = run(targets, stream=sys.stdout, top_level=Path(os.getcwd()))
    sys.stderr.flush()
    if summary.total == 0:
        print(f"no tests ran in {' '.join(targets)}", flush=True)
    print(summary.line(), flush=True)
    return summary.exit_code()


if __name__ == "__main__":
    sys.exit(main())
