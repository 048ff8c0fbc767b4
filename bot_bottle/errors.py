"""Error types shared across the package.

Every error a user can cause derives from ``BotBottleError`` and carries the exit code the CLI
returns for it, so the CLI can print one clean line instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Callable


class BotBottleError(Exception):
    """An expected failure with a message fit for the user; ``exit_code`` is what the CLI returns."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(BotBottleError):
    """The command line itself is wrong (bad flag combination, missing argument)."""

    exit_code = 2


def teardown_after_failure(failure: BaseException, teardown: Callable[[], None]) -> None:
    """Tear down after ``failure`` and let the caller re-raise it: the user's error stays the
    first one, and whatever the teardown left behind is added to its hint, never lost."""
    try:
        teardown()
    except BotBottleError as left:
        also = f"also, {left}" + (f" ({left.hint})" if left.hint else "")
        if not isinstance(failure, BotBottleError):
            raise left from failure  # an interrupt or a bug: the leftovers are what the user must act on
        failure.hint = f"{failure.hint}; {also}" if failure.hint else also
