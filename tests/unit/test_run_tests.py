"""scripts/run_tests.py: the summary line, the counting rules and the exit codes."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

RUNNER = Path(__file__).resolve().parents[2] / "scripts" / "run_tests.py"

MIXED = '''
import unittest

class Mixed(unittest.TestCase):
    def test_pass(self):
        pass

    def test_fail(self):
        self.fail("no")

    def test_error(self):
        raise RuntimeError("boom")

    @unittest.skip("not here")
    def test_skip(self):
        pass

    @unittest.expectedFailure
    def test_expected_failure(self):
        self.fail("known")

    @unittest.expectedFailure
    def test_unexpected_success(self):
        pass

    def test_two_failing_subtests_count_once(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertEqual(i, 0)

    def test_passing_subtests(self):
        for i in range(3):
            with self.subTest(i=i):
                pass


class BrokenFixture(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        raise AssertionError("no engine")

    def test_never_runs(self):
        pass
'''

PASSING = '''
import sys
import unittest

class Fine(unittest.TestCase):
    def test_one(self):
        print("noise on stderr", file=sys.stderr)

    @unittest.skip("later")
    def test_two(self):
        pass
'''


class RunTestsScriptTests(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name)

    def package(self, folder: str, body: str) -> None:
        path = self.root / folder
        path.mkdir(parents=True, exist_ok=True)
        for parent in [path, *path.relative_to(self.root).parents]:
            init = self.root / parent / "__init__.py"
            if parent != Path(".") and not init.exists():
                init.write_text("")
        (path / "test_sample.py").write_text(textwrap.dedent(body))

    def run_script(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(RUNNER), *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def last_line(self, proc: subprocess.CompletedProcess[str]) -> str:
        return proc.stdout.rstrip("\n").splitlines()[-1]

    def test_counting_rules(self) -> None:
        self.package("tests/unit", MIXED)
        proc = self.run_script()
        # pass, expected failure, passing subtests -> 3 passed; fail, error, unexpected
        # success, the subtest test, the class fixture -> 5 failed; one skipped.
        self.assertEqual(self.last_line(proc), "3 passed, 5 failed, 1 skipped", proc.stdout)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("test_pass (tests.unit.test_sample.Mixed", proc.stdout)

    def test_green_run_without_skips(self) -> None:
        self.package("tests/unit", PASSING.replace('@unittest.skip("later")', ""))
        proc = self.run_script("tests/unit")
        self.assertEqual(self.last_line(proc), "2 passed, 0 failed")
        self.assertEqual(proc.returncode, 0)

    def test_green_run_with_a_skip(self) -> None:
        self.package("tests/unit", PASSING)
        proc = self.run_script("tests")
        self.assertEqual(self.last_line(proc), "1 passed, 0 failed, 1 skipped")
        self.assertEqual(proc.returncode, 0)

    def test_several_folders(self) -> None:
        self.package("tests/unit", PASSING)
        self.package("tests/integration", PASSING)
        proc = self.run_script("tests/unit", "tests/integration")
        self.assertEqual(self.last_line(proc), "2 passed, 0 failed, 2 skipped")

    def test_no_tests_is_a_failure(self) -> None:
        (self.root / "tests" / "empty").mkdir(parents=True)
        (self.root / "tests" / "__init__.py").write_text("")
        (self.root / "tests" / "empty" / "__init__.py").write_text("")
        proc = self.run_script("tests/empty")
        self.assertEqual(self.last_line(proc), "0 passed, 0 failed")
        self.assertNotEqual(proc.returncode, 0)

    def test_import_error_counts_as_failed(self) -> None:
        self.package("tests/unit", "import no_such_module_here\n")
        proc = self.run_script()
        self.assertEqual(self.last_line(proc), "0 passed, 1 failed")
        self.assertNotEqual(proc.returncode, 0)


if __name__ == "__main__":
    unittest.main()
