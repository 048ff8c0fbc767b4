"""``python -m bot_bottle`` interrupted by Ctrl-C in its first moments, before the command line's
module has begun: it ends quietly with status 130, as the console script does.

The program runs in a subprocess started as ``python -m`` starts it (``runpy`` runs the package's
``__main__``), with an import hook that sends the process a real SIGINT when a chosen module is
about to be imported.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from tests.unit.test_cli_gaps_dec09h import INTERRUPT_HOOK

ROOT = Path(__file__).resolve().parents[2]

# ``python -m bot_bottle``, behind an import hook that sends this process SIGINT when the module
# named by the first argument is about to be imported.
AS_MODULE = INTERRUPT_HOOK + """\
import runpy
runpy.run_module("bot_bottle", run_name="__main__", alter_sys=True)
"""

# ``python -m bot_bottle``, saying which handler Ctrl-C has once the modules are loaded (when the
# command line's ``_loaded`` returns): Python's own, which each command turns into its clean stop.
HANDLER_ONCE_LOADED = """\
import _signal, sys
def watch(frame, event, arg):
    if event == "return" and frame.f_code.co_name == "_loaded":
        handler = _signal.getsignal(_signal.SIGINT)
        name = "SIG_IGN" if handler == _signal.SIG_IGN else getattr(handler, "__name__", repr(handler))
        sys.stderr.write("once loaded: " + name + "\\n")
sys.setprofile(watch)
import runpy
runpy.run_module("bot_bottle", run_name="__main__", alter_sys=True)
"""


def _ctrl_c_delivered() -> None:
    """In the child: SIGINT as a terminal's foreground job gets it (a test run in the background
    passes it on ignored, and a program started with Ctrl-C ignored rightly keeps it so)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class PythonDashMInterruptTests(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix="bot-bottle-test-")
        self.addCleanup(tmp.cleanup)
        self.home = Path(tmp.name)
        self.env = {**os.environ, "HOME": str(self.home), "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
        self.env.pop("BOT_BOTTLE_DEBUG", None)

    def run_child(self, script: str, *argv: str,
                  preexec: object = _ctrl_c_delivered) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", script, *argv], env=self.env, cwd=self.home,
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                              preexec_fn=preexec)  # type: ignore[arg-type]

    def assertQuiet130(self, result: subprocess.CompletedProcess[str]) -> None:
        self.assertEqual(result.returncode, 130, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertNotIn("KeyboardInterrupt", result.stderr)
        self.assertNotIn("internal error", result.stderr)

    def test_a_ctrl_c_before_the_command_line_module_begins(self) -> None:
        # Imported by __main__ itself, before any line of bot_bottle.cli has run.
        for module in ("bot_bottle.cli",):
            for argv in (("validate",), ("list",), ("--version",), ()):
                with self.subTest(module=module, argv=argv):
                    self.assertQuiet130(self.run_child(AS_MODULE, module, *argv))

    def test_a_ctrl_c_later_in_the_loading_still_ends_quietly(self) -> None:
        for module in ("argparse", "bot_bottle.errors", "bot_bottle.interrupts", "rich.console", "yaml"):
            with self.subTest(module=module):
                self.assertQuiet130(self.run_child(AS_MODULE, module, "list"))

    def test_once_loaded_ctrl_c_is_pythons_own_again(self) -> None:
        # The command's own clean stop (a bottle torn down) needs KeyboardInterrupt, not an exit.
        result = self.run_child(HANDLER_ONCE_LOADED, "validate")
        self.assertIn("once loaded: default_int_handler", result.stderr)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_ctrl_c_ignored_at_start_stays_ignored(self) -> None:
        # A background job starts with Ctrl-C ignored: neither module may turn it back on.
        def ignored() -> None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

        result = self.run_child(HANDLER_ONCE_LOADED, "validate", preexec=ignored)
        self.assertIn("once loaded: SIG_IGN", result.stderr)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_without_ctrl_c_the_command_runs(self) -> None:
        result = self.run_child(AS_MODULE, "no.such.module", "validate")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("no manifest files found", result.stderr)

    def test_importing_the_package_main_elsewhere_keeps_the_programs_ctrl_c(self) -> None:
        # A program importing bot_bottle.__main__ (a tool listing modules) is not bot-bottle.
        check = ("import signal, bot_bottle.__main__\n"
                 "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
                 "try:\n    signal.raise_signal(signal.SIGINT)\nexcept KeyboardInterrupt:\n    print('caught')\n")
        result = self.run_child(check)
        self.assertEqual((result.returncode, result.stdout.strip()), (0, "caught"), result.stderr)


if __name__ == "__main__":
    unittest.main()
