"""Text from outside (labels, folder names, the engine's words) in ``list``, ``cleanup`` and
``doctor``: shown as written, never read as Rich markup (``[/oops]`` used to end the command with
an internal error, ``[wip]`` to vanish), and control characters shown as escapes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import unittest
from contextlib import redirect_stdout
from pathlib import Path
from unittest import mock

from bot_bottle import proc
from bot_bottle.backend.docker.engine import DockerError
from bot_bottle.backend.docker.running import RunningBottle
from bot_bottle.state import Metadata, StateDir
from tests.fixtures import ManifestTestCase

MARKUP = "fix [/oops] thing [bold]"


class ListMarkupTest(ManifestTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.mh.bottle("dev", "egress:\n  routes: [pypi.org]\n")
        self.mh.agent("coder", {"bottle": "dev"})

    def check(self, *argv: str, running: object = (), expect: tuple[str, ...] = ()) -> str:
        result = self.mh.run_cli("list", *argv, running=running)  # type: ignore[arg-type]
        self.assertEqual(result.code, 0, result.stderr)
        for text in expect:
            self.assertIn(text, result.stdout)
        return result.stdout

    def test_a_running_bottles_label(self) -> None:
        live = [RunningBottle(id="aaaaaaaa", agent="coder", label=MARKUP, status="running",
                              started_at="2026-12-04T10:00:00", owner_alive=True, image="img")]
        self.check(running=live, expect=(MARKUP,))
        self.check("--running", running=live, expect=(MARKUP,))

    def test_a_preserved_bottles_label_and_agent(self) -> None:
        saved = StateDir(self.mh.home_dir / "state", "bbbbbbbb")
        saved.create()
        saved.write(Metadata(id="bbbbbbbb", agent="[red]coder", bottle="dev", backend="docker", label=MARKUP))
        saved.preserve("asked [/to]")
        self.check(expect=(MARKUP, "[red]coder", "asked [/to]"))
        self.check("--running", expect=(MARKUP, "[red]coder", "asked [/to]"))

    def test_a_label_cannot_write_to_the_terminal(self) -> None:
        live = [RunningBottle(id="aaaaaaaa", agent="coder", label="night\x1b[2Jrun", status="running",
                              started_at="", owner_alive=True, image="img")]
        out = self.check("--running", running=live, expect=("night\\x1b[2Jrun",))
        self.assertNotIn("\x1b", out)

    def test_a_working_folder_whose_name_looks_like_markup(self) -> None:
        for name in ("w[/x]", "[wip]"):
            with self.subTest(folder=name):
                self.mh.cwd = self.mh.home.parent / name
                agent = self.mh.agent("repo-agent", {"bottle": "dev"}, where="cwd")
                self.check(expect=(str(agent),))

    def test_the_engines_words_when_it_does_not_answer(self) -> None:
        down = DockerError("no Docker engine answers: dial unix [/var/run/docker.sock]")
        self.check(running=down, expect=("[/var/run/docker.sock]",))


class CleanupMarkupTest(ManifestTestCase):
    def test_a_temporary_folder_whose_name_looks_like_markup(self) -> None:
        tmp = self.mh.home.parent / "t[/x]"  # a folder "x]" in a folder "t["
        tmp.mkdir(parents=True)
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        owner = proc.identity(child.pid).replace(":", ".")
        child.wait()
        orphan = tmp / f"bot-bottle-{owner}-abc"
        orphan.mkdir()
        with mock.patch("bot_bottle.backend.docker.engine.is_available", return_value=False), \
                mock.patch.object(tempfile, "tempdir", str(tmp)):
            result = self.mh.run_cli("cleanup", "-n")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn(str(orphan), result.stdout)
        self.assertTrue(orphan.is_dir(), "a preview removes nothing")


class DoctorMarkupTest(unittest.TestCase):
    def test_the_engines_words_in_a_reason(self) -> None:
        from bot_bottle import doctor
        from bot_bottle.cli import doctor as doctor_cli

        report = doctor.Report(
            checks=(doctor.Check(doctor.DOCKER, False, "docker [/x]", "permission denied [/var/run/docker.sock]"),),
            backends=(doctor.Check("docker", False, "", "needs [bold]an engine"),),
        )
        out = io.StringIO()
        with redirect_stdout(out), mock.patch.dict(os.environ, {"COLUMNS": "200"}):
            doctor_cli.render_text(report)
        for text in ("docker [/x]: permission denied [/var/run/docker.sock]", "needs [bold]an engine"):
            self.assertIn(text, out.getvalue())


if __name__ == "__main__":
    unittest.main()
