"""The bottle handle every backend returns, and the result of running a command in it.

Provisioners receive a ``Bottle`` and use only ``exec`` and ``cp_in``; nothing outside a backend
shells out to ``docker`` or ``smolvm`` for a bottle.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ExecResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Bottle(abc.ABC):
    """A running bottle: run commands in it, copy files into it, build the agent's argv, close it."""

    #: The system prompt's path inside the bottle, set after the prompt provisioner ran.
    prompt_path: str | None = None

    @abc.abstractmethod
    def exec(self, cmd: str, *, user: str = "node") -> ExecResult:
        """Run a shell command inside the bottle as ``user`` (``node`` unless told otherwise)."""

    @abc.abstractmethod
    def cp_in(self, host_path: str | Path, guest_path: str) -> None:
        """Copy a file or a folder from the host into the bottle."""

    def write_private(self, guest_path: str, text: str) -> None:
        """Write ``text`` to ``guest_path`` in the bottle, mode 600 for the agent user. Here by
        way of a file in a private host folder (``cp_in``); a backend that can stream it in
        without any host file does so instead."""
        import os

        from bot_bottle import scratch

        with scratch.private_dir() as tmp:
            local = Path(tmp) / Path(guest_path).name
            fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            self.cp_in(local, guest_path)

    @abc.abstractmethod
    def agent_argv(self, extra: list[str], *, tty: bool) -> list[str]:
        """The full host argv that runs the agent CLI inside the bottle with ``extra`` appended."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the bottle. Idempotent: a second call does nothing and never raises."""
