"""A launch's private folders go where Python's tempfile would put them, without its first-use
probe (a file of a random name written and removed in that folder): a launch killed between the
two left it behind, with no name ``cleanup`` could know."""

from __future__ import annotations

import os
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle import scratch


def _no_probe(*args: object, **kwargs: object) -> str:
    raise AssertionError("tempfile probed the folder")


class TempRootTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix="bb-scratch-")
        self.addCleanup(tmp.cleanup)
        self.folder = Path(tmp.name)
        for patch in (mock.patch.object(tempfile, "tempdir", None),
                      mock.patch.object(tempfile, "_get_default_tempdir", _no_probe)):
            patch.start()
            self.addCleanup(patch.stop)

    def test_a_private_folder_under_tmpdir_without_the_probe(self) -> None:
        with mock.patch.dict(os.environ, {"TMPDIR": str(self.folder)}):
            with scratch.private_dir() as made:
                self.assertEqual(made.parent, self.folder)
                self.assertTrue(made.name.startswith(scratch.PREFIX))
                self.assertEqual(os.stat(made).st_mode & 0o777, 0o700)
            self.assertEqual(list(self.folder.iterdir()), [])  # nothing else was ever written there
            self.assertEqual(scratch.orphans(), [])

    def test_a_relative_tmpdir_is_made_absolute(self) -> None:
        with mock.patch.dict(os.environ, {"TMPDIR": os.path.relpath(self.folder)}):
            self.assertEqual(scratch.temp_root(), str(self.folder))

    def test_without_a_usable_tmpdir_python_picks_as_before(self) -> None:
        picked = str(self.folder)
        with mock.patch.object(tempfile, "_get_default_tempdir", lambda *a, **k: picked):
            for env in ({"TMPDIR": str(self.folder / "missing")}, {}):
                with self.subTest(env=env), mock.patch.dict(os.environ, env, clear=False):
                    if not env:
                        os.environ.pop("TMPDIR", None)
                    tempfile.tempdir = None
                    self.assertEqual(scratch.temp_root(), picked)


class CommandLineTempdirTest(unittest.TestCase):
    """The command line fixes the folder once, so no later temporary file (a copy into the
    bottle, say) probes it either."""

    def test_the_folder_is_fixed_without_a_probe(self) -> None:
        import subprocess
        import sys

        with tempfile.TemporaryDirectory(prefix="bb-scratch-") as folder:
            check = ("import tempfile, sys\n"
                     "def probe(*a, **k):\n    raise SystemExit('probed')\n"
                     "tempfile._get_default_tempdir = probe\n"
                     "from bot_bottle import cli\n"
                     "cli._settle_tempdir()\n"
                     "with tempfile.TemporaryFile() as f:\n    pass\n"
                     "print(tempfile.gettempdir())\n")
            env = {**os.environ, "TMPDIR": folder, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
            result = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True,
                                    timeout=60)
            self.assertEqual((result.returncode, result.stdout.strip()), (0, folder), result.stderr)
            self.assertEqual(list(Path(folder).iterdir()), [])


if __name__ == "__main__":
    unittest.main()
