"""The ``bot-bottle`` command line: argparse wiring only; each subcommand lives in its own module.

A subcommand module exposes ``add_parser(subparsers)`` which registers its parser and sets
``func`` (a callable taking the parsed namespace and returning an exit code).
"""

from __future__ import annotations

import _signal  # the C module alone: ``signal`` takes milliseconds building its enums
import os
import sys


def _end_while_loading(signum: int, frame: object) -> None:
    """Ctrl-C while the program is still loading its modules: nothing has begun, so end at once.

    Raised as an exception instead, it would stop an import half way, where no code of ours can
    catch it (a traceback) or where CPython turns it into another error inside the module."""
    os._exit(130)


def _started_as_the_program() -> bool:
    """Whether this process is the ``bot-bottle`` program (its console script, or ``python -m
    bot_bottle``), not another program importing this module (a test run, which must keep its
    own Ctrl-C)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name == "bot_bottle.__main__":
        return True
    return os.path.basename(getattr(main, "__file__", None) or "").startswith("bot-bottle")


def _may_take_over(handler: object) -> bool:
    """Whether Ctrl-C's ``handler`` is Python's own, or the one ``python -m bot_bottle``'s
    ``__main__`` set to cover its import of this module (this one takes over, and ``_loaded``
    puts Python's own back). Any other (ignored, a program's own) is left as it is."""
    if handler is _signal.default_int_handler:
        return True
    mains = getattr(sys.modules.get("__main__"), "_end_while_loading", None)
    return mains is not None and handler is mains


# First, before the imports below: the console script and ``python -m bot_bottle`` reach this
# line moments after they start, and every import after it is covered. Ctrl-C ignored (a
# background job) stays so; ``_main`` puts Python's own handler back once the parser is built,
# before any command runs.
if _started_as_the_program() and _may_take_over(_signal.getsignal(_signal.SIGINT)):
    _signal.signal(_signal.SIGINT, _end_while_loading)

import argparse  # noqa: E402 - after the handler above, on purpose
import atexit  # noqa: E402
import errno  # noqa: E402
import importlib  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from types import FrameType  # noqa: E402
from typing import NoReturn  # noqa: E402

from bot_bottle import __version__, interrupts  # noqa: E402
from bot_bottle.errors import BotBottleError  # noqa: E402

# Order is the order shown in --help. Only commands that work are listed here.
SUBCOMMANDS = (
    "start",
    "resume",
    "commit",
    "stop",
    "list",
    "info",
    "cleanup",
    "logs",
    "supervise",
    "init",
    "edit",
    "validate",
    "doctor",
    "demo",
)


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line and exit code 2 (argparse's own convention)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        # Only the options --help lists: a shortened one (`--dry` for `--dry-run`) that a script
        # came to rely on would change meaning the day another option shares its start.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}{_command_suggestion(message)}\n")
        raise SystemExit(2)


_INVALID_COMMAND = re.compile(r"^argument COMMAND: invalid choice: '([^']*)'")


# How alike a mistyped command must be to one to be suggested. Command names are short, and the
# manifests' cut-off (0.6) pairs unrelated words by a few shared letters ('bogus' with 'logs');
# a swapped or dropped letter ('lsit', 'inti', 'stat') still reaches it, and so does the start
# of only one command ('doc').
COMMAND_CUTOFF = 0.75


def _command_suggestion(message: str) -> str:
    """``"; did you mean 'start'?"`` after argparse's words for a mistyped subcommand, where
    to find help for ``help``, else ``""``."""
    import difflib

    from bot_bottle.manifest.conceal import may_hold_credential

    typed = _INVALID_COMMAND.match(message)
    if typed is None or may_hold_credential(typed.group(1)):  # a token is never echoed back
        return ""
    word = typed.group(1).lower()
    if word in ("help", "-help", "h"):
        return "; `bot-bottle --help` lists the commands, `bot-bottle COMMAND --help` describes one"
    starting = [c for c in SUBCOMMANDS if len(word) >= 2 and c.startswith(word)]
    close = starting if len(starting) == 1 else difflib.get_close_matches(word, SUBCOMMANDS, n=1,
                                                                          cutoff=COMMAND_CUTOFF)
    return f"; did you mean '{close[0]}'?" if close else ""


def _option_suggestion(parser: argparse.ArgumentParser, extra: Sequence[str]) -> str:
    """``"; did you mean '--running'?"`` for the first unknown option close to one ``parser``
    takes (no option is taken by a shortened name), else ``""``."""
    from bot_bottle.manifest.schema import did_you_mean

    options = [flag for action in parser._actions for flag in action.option_strings if flag.startswith("--")]
    for word in extra:
        if word.startswith("--"):
            close = did_you_mean(word.split("=", 1)[0], options)
            return f"; {close.strip()}" if close else ""
    return ""


EPILOG = """\
first steps:
  bot-bottle init                     write an example bottle (dev) and agent (coder)
  bot-bottle start coder --dry-run    the plan: hosts, routes, secrets by name, images
  bot-bottle start coder              confirm, launch, attach the agent
  bot-bottle demo                     a scripted bottle showing each protection

`bot-bottle COMMAND --help` describes each command."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bot-bottle",
        description="Run AI coding agents inside bottles that hold only what their manifest grants.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bot-bottle {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"bot_bottle.cli.{name.replace('-', '_')}")
        module.add_parser(sub)
    return parser


def _subparser(parser: argparse.ArgumentParser, name: str | None) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return action.choices[name]
    return parser


def _say(message: str) -> None:
    try:
        sys.stderr.write(message + "\n")
    except (OSError, ValueError):
        pass  # no terminal any more (SIGHUP)


# What a shell reports for a program ended by SIGPIPE (128 + 13), as `yes | head -1` ends.
EXIT_READER_GONE = 141


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader of our output went away (`bot-bottle list | head -1`): end quietly, with
        # the status of a program that SIGPIPE ended, as other command line tools do.
        _stdout_to_devnull()
        return EXIT_READER_GONE
    except KeyboardInterrupt:
        # A second Ctrl-C that lands after ``_main`` handled the first (while it says
        # "interrupted"): the work is done, and the status is still a Ctrl-C's, not a death by
        # the signal with the interpreter's own exit.
        return 130


def run() -> NoReturn:
    """The ``bot-bottle`` program: ``main``, then exit with its status.

    Once ``main`` has returned the work is done, and a signal that lands while the interpreter
    shuts down (Ctrl-C pressed again, a second SIGTERM) must not change the status: Python puts
    the default handlers back early in its shutdown, and one arriving after that ended the
    program by the signal itself (status -2 to its parent) after it had said "interrupted".
    So all three are ignored from there on (in the program only: tests call ``main``). Before
    that, Python waits for the threads still finishing their work (the console's last engine
    call, up to its timeout): a signal then ends the program at once, with the same status.
    """
    code = 130
    try:
        code = main()
    except KeyboardInterrupt as exc:  # one that lands between main's return and this line
        code = exc.exit_code if isinstance(exc, interrupts.Terminated) else 130
    finally:
        for sig in interrupts.HELD_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
    _forget_interrupts_caught_in_generated_code()
    ends_now = _exit_at_once(code)
    for sig in interrupts.HELD_SIGNALS:
        signal.signal(sig, ends_now)
    # Python's shutdown waits for the threads first, then runs these (the last registered first).
    atexit.register(_ignore_signals)
    sys.exit(code)


def _forget_interrupts_caught_in_generated_code() -> None:
    """Keep the exit status ours after a Ctrl-C that landed in code Python builds from text.

    CPython marks a KeyboardInterrupt that passes out of ``exec``/``eval`` of a string as
    unhandled even when a caller catches it, and at exit (of ``python -m bot_bottle``) then ends
    the program by SIGINT itself (status -2 to its parent, no traceback) instead of with its
    status. Such strings run while
    modules are imported (a dataclass's or named tuple's generated methods), and a start imports
    modules as it goes, so a Ctrl-C there turned "interrupted" (130) into a death by the signal.
    Each ``exec`` of a string clears that mark before it runs; this one raises nothing (the
    signals are ignored by now), so the mark stays clear up to the exit.
    """
    exec("")  # noqa: S102 - an empty program: only its side effect on the mark is wanted


def _exit_at_once(code: int) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)

    return handler


def _ignore_signals() -> None:
    for sig in interrupts.HELD_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of what is still buffered for
    the gone reader neither fails nor prints a traceback (Python's documented way, see the
    signal module's note on SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout is not a real file (a test's StringIO): nothing is flushed to a pipe later


def _settle_tempdir() -> None:
    """Python's temporary folder for this process, fixed without its first-use probe where
    ``TMPDIR`` names a folder (see ``scratch.temp_root``): a command killed while Python wrote and
    removed its probe file would leave it there, named at random, for no cleanup to find."""
    import tempfile

    from bot_bottle import scratch

    if tempfile.tempdir is None and os.path.isdir(os.environ.get("TMPDIR") or ""):
        tempfile.tempdir = scratch.temp_root()


def _main(argv: Sequence[str] | None) -> int:
    _settle_tempdir()
    # Building the parser imports every subcommand's module: a Ctrl-C landing in an import (which
    # CPython can turn into an odd error inside it) or a broken module must not print a traceback.
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
    except KeyboardInterrupt:
        return 130  # no work has begun: nothing to undo, nothing to say
    except BrokenPipeError:
        raise  # `--help` to a reader that went away (see main)
    except Exception as exc:
        return _internal_error(exc)
    finally:
        _loaded()
    if extra:
        # Named by the subcommand's own usage line, not the top-level one.
        command = _subparser(parser, getattr(args, "command", None))
        command.error(f"unrecognized arguments: {' '.join(extra)}{_option_suggestion(command, extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        # SIGTERM and SIGHUP (a closed terminal) unwind like Ctrl-C, so a bottle is torn down.
        with interrupts.terminate_as_interrupt():
            code = int(args.func(args) or 0)
            interrupts.raise_pending()  # a signal whose exception Python dropped: it still ends us
            return code
    except BotBottleError as exc:
        from bot_bottle.cli import output

        from bot_bottle.manifest.errors import ManifestError

        for error in exc.each() if isinstance(exc, ManifestError) else (exc,):
            output.error(str(error), hint=error.hint)
        return exc.exit_code
    except interrupts.Terminated as exc:
        interrupts.taken()
        _say(f"terminated ({exc})")
        return exc.exit_code
    except KeyboardInterrupt:
        interrupts.taken()
        _say("interrupted")
        return 130
    except BrokenPipeError:
        raise  # the reader went away: not a bug (see main)
    except OSError as exc:
        if exc.errno not in HOST_FILE_ERRNOS or os.environ.get("BOT_BOTTLE_DEBUG"):
            return _internal_error(exc)
        from bot_bottle.cli import output

        message, hint = host_file_error(exc)
        output.error(message, hint=hint)
        return 1
    except Exception as exc:  # a bug: say so in one line unless asked for the traceback
        return _internal_error(exc)


def _loaded() -> None:
    """The modules are loaded: from here a Ctrl-C is Python's KeyboardInterrupt, which each
    command turns into its own clean stop (a bottle is torn down, not left behind)."""
    if signal.getsignal(signal.SIGINT) is _end_while_loading:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# Failures of the host's own files that are the machine's state, not a bug: a full disk or
# quota, a read-only file system, a file or folder that is not the user's.
HOST_FILE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES})


def host_file_error(exc: OSError) -> tuple[str, str]:
    """The one-line error and hint for ``exc``, one of ``HOST_FILE_ERRNOS``."""
    from pathlib import Path

    from bot_bottle.state import unwritable_hint

    reason = exc.strerror or str(exc)
    if not exc.filename:
        return reason, unwritable_hint(Path.home() / ".bot-bottle", exc)
    path = Path(os.fsdecode(exc.filename))
    return f"{path}: {reason}", unwritable_hint(path.parent, exc)


def _internal_error(exc: BaseException) -> int:
    if os.environ.get("BOT_BOTTLE_DEBUG"):
        raise exc
    from bot_bottle.cli import output

    output.error(
        f"internal error: {type(exc).__name__}: {exc}",
        hint="this is a bug in bot-bottle; rerun with BOT_BOTTLE_DEBUG=1 for the traceback and report it",
    )
    return 70
