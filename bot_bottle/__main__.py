"""``python -m bot_bottle``: the ``bot-bottle`` program.

Ctrl-C while this file imports the command line's module (found, read and compiled before its
first line runs, where its own cover begins) would stop that import with a traceback. The same
quiet end covers it from here; ``bot_bottle.cli`` takes over once it runs.
"""

from __future__ import annotations

import _signal  # the C module alone: ``signal`` takes milliseconds building its enums
import os


def _end_while_loading(signum: int, frame: object) -> None:
    """Ctrl-C before the program has loaded: nothing has begun, so end at once, as interrupted."""
    os._exit(130)


# Only as the program (not a tool importing this module), and Ctrl-C ignored (a background
# job) stays so.
if __name__ == "__main__" and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
    _signal.signal(_signal.SIGINT, _end_while_loading)

from bot_bottle.cli import run  # noqa: E402 - after the handler above, on purpose

if __name__ == "__main__":
    run()
