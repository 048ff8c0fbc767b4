"""Manifest errors: every one names the file, the line and the key, and exits with code 2."""

from __future__ import annotations

from pathlib import Path

from bot_bottle.errors import BotBottleError


class ManifestError(BotBottleError):
    """A manifest file is wrong. ``str()`` is one line: ``FILE:LINE: KEY: what is wrong``."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.line = line
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
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.detail}"


class NotFoundError(ManifestError):
    """An agent or bottle named on the command line or in a manifest does not exist."""
