"""A reader that goes away (``bot-bottle list | head -1``) ends the command quietly, with the
status of a program SIGPIPE ended (141), never a traceback or an "internal error"."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import unittest
from pathlib import Path
from unittest import mock

from tests.fixtures import TEST_IMAGES, ManifestTestCase

ROOT = Path(__file__).resolve().parents[2]


class _GoneReader(io.StringIO):
    """A stdout whose reader has closed the pipe."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


class InProcessTests(ManifestTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.mh.bottle("dev", {"egress": {"routes": ["pypi.org"]}})
        self.mh.agent("coder", {"bottle": "dev"})

    def run_to_gone_reader(self, *argv: str) -> tuple[int, str]:
        from bot_bottle import plan as plan_mod
        from bot_bottle.cli import main

        err = io.StringIO()
        with self.mh.environment(), \
                mock.patch("bot_bottle.cli.common.docker_runtime", return_value=("runc", "test")), \
                mock.patch.object(plan_mod, "default_images", return_value=TEST_IMAGES), \
                mock.patch.object(sys, "stdin", io.StringIO("")), \
                contextlib.redirect_stdout(_GoneReader()), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        return code, err.getvalue()

    def test_rich_text_and_json_end_quietly(self) -> None:
        for argv in (("start", "coder", "--dry-run"), ("start", "coder", "--dry-run", "--format", "json"),
                     ("info", "coder"), ("validate",)):
            with self.subTest(argv=argv):
                code, stderr = self.run_to_gone_reader(*argv)
                self.assertEqual(code, 141)
                self.assertEqual(stderr, "")


class ProcessTests(ManifestTestCase):
    def test_a_closed_pipe_ends_the_process_quietly(self) -> None:
        self.mh.bottle("dev", {"egress": {"routes": ["pypi.org"]}})
        self.mh.agent("coder", {"bottle": "dev"})
        env = {**os.environ, "HOME": str(self.mh.home), "COLUMNS": "80", "PYTHONPATH": str(ROOT)}
        for argv in (["validate"], ["validate", "--format", "json"]):
            with self.subTest(argv=argv):
                read_end, write_end = os.pipe()
                os.close(read_end)  # the reader is gone before the first write
                try:
                    proc = subprocess.run([sys.executable, "-m", "bot_bottle", *argv], stdout=write_end,
                                          stderr=subprocess.PIPE, text=True, cwd=self.mh.cwd, env=env, timeout=60)
                finally:
                    os.close(write_end)
                self.assertEqual(proc.returncode, 141, proc.stderr)
                self.assertEqual(proc.stderr, "")


if __name__ == "__main__":
    unittest.main()
