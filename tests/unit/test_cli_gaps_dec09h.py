"""Ctrl-C while the command line is still importing its modules ends it quietly with status 130,
for every command: no traceback, no "internal error".

The program runs in a subprocess started as the console script starts it (``from
bot_bottle.cli import run``). One set of tests sends it a real SIGINT from inside the import of
a chosen module (always lands there); the other sends SIGINT from outside after a few delays.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# An import hook that sends this process SIGINT when the module named by the first argument is
# about to be imported (the lines that start the program follow it).
INTERRUPT_HOOK = """\
import os, signal, sys
target = sys.argv.pop(1)
class Interrupt:
    fired = False
    def find_spec(self, name, path=None, target_=None):
        if name == target and not Interrupt.fired:
            Interrupt.fired = True
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, Interrupt())
"""

# The console script's own lines, behind that hook.
INTERRUPTED_IMPORT = INTERRUPT_HOOK + """\
from bot_bottle.cli import run
sys.exit(run())
"""

# The console script, saying "ready" once the command line's own module has begun and imports
# its first module (argparse, imported by nothing before it): the parent's delays count from
# there. Before that point the interpreter starts up and finds the module, where no code of
# bot-bottle's runs yet, so nothing there can be covered.
READY_THEN_RUN = """\
import sys
class Ready:
    said = False
    def find_spec(self, name, path=None, target=None):
        if name == "argparse" and not Ready.said:
            Ready.said = True
            sys.stdout.write("ready\\n")
            sys.stdout.flush()
        return None
sys.meta_path.insert(0, Ready())
from bot_bottle.cli import run
sys.exit(run())
"""


def _ctrl_c_delivered() -> None:
    """In the child: SIGINT as a terminal's foreground job gets it. A test run started in the
    background (``nohup ... &``) passes it on ignored, and a program that starts with Ctrl-C
    ignored rightly keeps it so."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class _Child:
    def __init__(self, home: Path) -> None:
        self.env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
        self.env.pop("BOT_BOTTLE_DEBUG", None)
        self.cwd = home

    def script(self, text: str) -> str:
        """``text`` saved as a script named as the console script is (the program knows itself
        by that name, as it must leave the Ctrl-C of a program that merely imports it alone)."""
        folder = self.cwd / "bin"
        folder.mkdir(exist_ok=True)
        path = folder / "bot-bottle"
        path.write_text(text, encoding="utf-8")
        return str(path)

    def interrupted_in_import(self, module: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, self.script(INTERRUPTED_IMPORT), module, *argv], env=self.env,
                              cwd=self.cwd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, preexec_fn=_ctrl_c_delivered)

    def interrupted_after(self, delay: float, *argv: str) -> tuple[int, str]:
        proc = subprocess.Popen([sys.executable, self.script(READY_THEN_RUN), *argv], env=self.env, cwd=self.cwd,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, preexec_fn=_ctrl_c_delivered, text=True)
        assert proc.stdout is not None
        proc.stdout.readline()
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        return proc.returncode, err


class InterruptDuringImportTests(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix="bot-bottle-test-")
        self.addCleanup(tmp.cleanup)
        self.child = _Child(Path(tmp.name))

    def assertQuiet130(self, code: int, stderr: str) -> None:
        self.assertEqual(code, 130, stderr)
        self.assertNotIn("Traceback", stderr)
        self.assertNotIn("KeyboardInterrupt", stderr)
        self.assertNotIn("internal error", stderr)

    def test_a_ctrl_c_in_the_command_lines_own_imports(self) -> None:
        # Imported by bot_bottle.cli itself, before any of its code can catch anything.
        for module in ("argparse", "bot_bottle.errors", "bot_bottle.interrupts"):
            with self.subTest(module=module):
                result = self.child.interrupted_in_import(module, "validate")
                self.assertQuiet130(result.returncode, result.stderr)

    def test_a_ctrl_c_while_the_commands_are_loaded(self) -> None:
        for module in ("rich.console", "yaml", "bot_bottle.manifest.schema", "bot_bottle.api", "bot_bottle.doctor"):
            with self.subTest(module=module):
                result = self.child.interrupted_in_import(module, "list")
                self.assertQuiet130(result.returncode, result.stderr)

    def test_every_command_ends_quietly(self) -> None:
        for argv in (("validate",), ("list",), ("info", "coder"), ("start", "coder", "--dry-run"), ("logs",),
                     ("doctor",), ("cleanup",), ("--version",), ("--help",), ()):
            with self.subTest(argv=argv):
                result = self.child.interrupted_in_import("bot_bottle.errors", *argv)
                self.assertQuiet130(result.returncode, result.stderr)

    def test_sigint_from_outside_at_several_delays(self) -> None:
        outcomes = []
        for delay in (0.0, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.2):
            code, err = self.child.interrupted_after(delay, "validate")
            outcomes.append((delay, code, err[-300:]))
        for delay, code, err in outcomes:
            with self.subTest(delay=delay):
                self.assertNotIn("Traceback", err)
                self.assertNotIn("internal error", err)
                # Done before the signal came (0: nothing to validate) or interrupted (130).
                self.assertIn(code, (0, 130), err)

    def test_python_m_bot_bottle_too(self) -> None:
        # As ``python -m bot_bottle`` runs the package's __main__ (after the same import hook).
        as_module = INTERRUPTED_IMPORT.replace(
            "from bot_bottle.cli import run\nsys.exit(run())\n",
            "import runpy\nrunpy.run_module('bot_bottle', run_name='__main__', alter_sys=True)\n")
        self.assertNotEqual(as_module, INTERRUPTED_IMPORT)
        for module in ("argparse", "bot_bottle.errors", "rich.console"):
            with self.subTest(module=module):
                result = subprocess.run([sys.executable, "-c", as_module, module, "list"], env=self.child.env,
                                        cwd=self.child.cwd, capture_output=True, text=True, timeout=120,
                                        stdin=subprocess.DEVNULL, preexec_fn=_ctrl_c_delivered)
                self.assertQuiet130(result.returncode, result.stderr)

    def test_a_program_importing_the_cli_keeps_its_own_ctrl_c(self) -> None:
        check = ("import signal, bot_bottle.cli\n"
                 "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
                 "try:\n    signal.raise_signal(signal.SIGINT)\nexcept KeyboardInterrupt:\n    print('caught')\n")
        result = subprocess.run([sys.executable, "-c", check], env=self.child.env, cwd=self.child.cwd,
                                capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, preexec_fn=_ctrl_c_delivered)
        self.assertEqual((result.returncode, result.stdout.strip()), (0, "caught"), result.stderr)

    def test_without_ctrl_c_the_command_runs(self) -> None:
        result = self.child.interrupted_in_import("no.such.module", "validate")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("no manifest files found", result.stderr)


if __name__ == "__main__":
    unittest.main()
