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

    @abc.abstractmethod
    def agent_argv(self, extra: list[str], *, tty: bool) -> list[str]:
        """The full host argv that runs the agent CLI inside the bottle with ``extra`` appended."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the bottle. Idempotent: a second call does nothing and never raises."""
