"""Manifest errors: every one names the file, the line and the key, and exits with code 2."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bot_bottle.errors import BotBottleError


class ManifestError(BotBottleError):
    """A manifest file is wrong. ``str()`` is one line: ``FILE:LINE: KEY: what is wrong``.

    ``column`` (1-based, in characters) is where on that line the key or value starts, where it
    is known; ``str()`` leaves it out, so its shape stays what scripts already read.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
        column: int | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.line = line
        self.column = column if line is not None else None
        self.key = key
        self.detail = message
        super().__init__(self._render(), hint=hint)

    def _render(self) -> str:
        where = ""
        if self.path is not None:
            where = str(self.path)
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        key = f"{self.shown_key}: " if self.key else ""
        return f"{where}{key}{self.detail}"

    @property
    def shown_key(self) -> str | None:
        """``key`` as printed: a token pasted where a key belongs is named, never shown."""
        if self.key is None:
            return None
        from bot_bottle.manifest.conceal import conceal_tokens

        return conceal_tokens(self.key)

    def each(self) -> tuple[ManifestError, ...]:
        """Every error this one stands for: itself, or each of ``ManifestErrors``."""
        return (self,)


class ManifestErrors(ManifestError):
    """Several errors found in one file, in line order, so one mistake does not hide the next.

    It reads as its first (``str``, ``path``, ``line``, ``column``, ``key``, ``hint``), plus how many more
    there are; ``each()`` gives them all, for whoever shows errors one per line.
    """

    def __init__(self, errors: Sequence[ManifestError]) -> None:
        self.errors = tuple(e for error in errors for e in error.each())
        first = self.errors[0]
        super().__init__(first.detail, path=first.path, line=first.line, key=first.key, hint=first.hint,
                         column=first.column)

    def _render(self) -> str:
        more = len(self.errors) - 1
        return super()._render() + f" (and {more} more error{'s' if more != 1 else ''} in this file)"

    def each(self) -> tuple[ManifestError, ...]:
        return self.errors


def gathered(errors: Sequence[ManifestError]) -> ManifestError:
    """One error standing for ``errors`` (at least one), ordered by line."""
    ordered = sorted((e for error in errors for e in error.each()), key=lambda e: e.line or 0)
    return ordered[0] if len(ordered) == 1 else ManifestErrors(ordered)


class NotFoundError(ManifestError):
    """An agent or bottle named on the command line or in a manifest does not exist."""
