"""A fake ``Bottle`` for unit tests of provisioners: a temporary folder plays the guest filesystem.

``cp_in`` copies into that folder (guest paths are mapped under it), ``exec`` runs nothing and
records the command with the user. Provisioners that use only the handle can be tested fully.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bot_bottle.backend import Bottle, ExecResult


class FakeBottle(Bottle):
    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-bottle-")
        self.root = Path(self._tmp.name)
        self.commands: list[tuple[str, str]] = []
        self.closed = 0

    def guest(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def exec(self, cmd: str, *, user: str = "node") -> ExecResult:
        self.commands.append((user, cmd))
        return ExecResult(0, "", "")

    def cp_in(self, host_path: str | Path, guest_path: str) -> None:
        source, target = Path(host_path), self.guest(guest_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)

    def agent_argv(self, extra: list[str], *, tty: bool) -> list[str]:
        return ["fake", "agent", *extra]

    def close(self) -> None:
        if not self.closed:
            self._tmp.cleanup()
        self.closed += 1
