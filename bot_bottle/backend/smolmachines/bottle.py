"""``SmolmachinesBottle``: the bottle handle for an agent in a micro-VM.

Every command runs through ``subprocess.run`` here, as ``smolvm machine exec`` with the user on
the argv (``-u USER`` on 1.x, ``runuser -u USER`` inside the guest on 0.8). Only non-secret env
ever goes on an argv (``-e KEY=VALUE``); secret env lives in a mode-600 file inside the guest that
the agent's launcher sources, so no host process list ever shows a secret value. The agent's run
records its exit status in the guest as on Docker (``docker.bottle.RECORDER``), and an interactive
run gets the user's terminal type as on Docker (``agent_setup.terminal_env``).

There is no ``memory_end``: the guest's own kernel ends a process that runs it out of memory and
the machine goes on running, and smolvm documents no way to ask why a machine or a process ended.
"""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from bot_bottle import scratch
from bot_bottle.backend import Bottle, ExecResult
from bot_bottle.backend.agent_setup import terminal_env
from bot_bottle.backend.docker.bottle import (
    WORKDIR,
    copy_source,
    new_status_file,
    parse_status,
    read_status_cmd,
    recorded_argv,
    run_exec,
)
from bot_bottle.backend.secret_env import launcher_argv
from bot_bottle.backend.smolmachines import smolvm
from bot_bottle.backend import archive as archive_mod
from bot_bottle.errors import BotBottleError

# Where the secret env file lives in the guest: the agent user's own, mode 600.
SECRET_ENV_FILE = "/home/node/.bot-bottle/agent.env"
# Where a run records its exit status: always there and writable by the agent user (the secret env
# file's folder exists only when there is secret env). Read and removed after each run.
STATUS_DIR = "/tmp"

class SmolmachinesBottle(Bottle):
    def __init__(
        self,
        name: str,
        guest_env: Mapping[str, str] | None = None,
        agent_command: str = "claude",
        *,
        secret_env_file: str = SECRET_ENV_FILE,
        workdir: str = WORKDIR,
        exec_timeout: float | None = 300,
        cli: smolvm.Installed | None = None,
        sidecar: str | None = None,
    ) -> None:
        self.name = name
        self.sidecar = sidecar  # its bundle's container: the VM's only way out
        self.guest_env = dict(guest_env or {})
        self.agent_command = agent_command
        self.secret_env_file = secret_env_file
        self.workdir = workdir
        self._exec_timeout = exec_timeout
        self._cli_override = cli
        self._closed = False

    @property
    def machine(self) -> str:
        return self.name

    def sidecar_stopped(self) -> str | None:
        """Why this bottle's bundle stopped while the agent runs on (``sidecar_watch.stopped_why``)."""
        from bot_bottle.backend.docker.sidecar_watch import stopped_why

        return stopped_why(self.sidecar) if self.sidecar is not None else None

    def _cli(self) -> smolvm.Installed:
        return self._cli_override or smolvm.installed()

    def exec_argv(self, cmd: str, *, user: str = "node") -> list[str]:
        return smolvm.machine_exec_argv(self._cli(), self.name, ["sh", "-c", cmd], env=self.guest_env, user=user)

    def exec(self, cmd: str, *, user: str = "node") -> ExecResult:
        cli = self._cli()
        return run_exec(self.exec_argv(cmd, user=user), self._exec_timeout, env=smolvm.process_env(cli),
                        clean_stderr=smolvm._clean)

    def cp_in(self, host_path: str | Path, guest_path: str, *, user: str = "node") -> None:
        """Copy a file or folder in, owned by ``user``: an archive unpacked by ``user`` itself.

        ``machine cp`` lands files owned by root; unpacking as the target user gives the same
        ownership a Docker bottle gets, parent folders included.
        """
        source = copy_source(host_path)
        guest = PurePosixPath(guest_path)
        staging = f"/tmp/bot-bottle-cp-{secrets.token_hex(6)}.tar"
        cli = self._cli()
        with scratch.private_dir() as tmp:
            archive = Path(tmp) / "in.tar"
            archive_mod.pack(archive, source, guest.name)
            timeout = archive_mod.copy_timeout(self._exec_timeout, archive.stat().st_size)
            try:
                proc = subprocess.run(
                    smolvm.machine_cp_argv(cli, str(archive), f"{self.name}:{staging}"),
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    env=smolvm.process_env(cli),
                )
            except subprocess.TimeoutExpired:
                raise archive_mod.timed_out(source, timeout) from None
        if proc.returncode != 0:
            raise BotBottleError(
                f"could not copy {source} into the bottle at {guest_path}: {smolvm._last_line(smolvm._clean(proc.stderr))}"
            )
        quoted, parent = shlex.quote(staging), shlex.quote(str(guest.parent))
        try:
            steps = [
                (f"chmod 0644 {quoted}", "root"),
                (f"mkdir -p {parent} && tar -x --no-same-owner -C {parent} -f {quoted}", user),
            ]
            for cmd, as_user in steps:
                result = self.exec(cmd, user=as_user)
                if not result.ok:
                    raise BotBottleError(
                        f"could not copy {source} into the bottle at {guest_path}: "
                        f"{(result.stderr or result.stdout).strip()}"
                    )
        finally:
            self.exec(f"rm -f {quoted}", user="root")

    def run_argv(self, command: list[str], *, tty: bool, status_file: str | None = None) -> list[str]:
        """The host argv that runs ``command`` as the agent user, with the agent's env.

        With ``status_file``, the command's exit status is also written there (``exit_status``).
        """
        inner = launcher_argv(self.secret_env_file, command)
        if status_file is not None:
            inner = recorded_argv(status_file, inner)
        return smolvm.machine_exec_argv(
            self._cli(), self.name, inner, env=self.run_env(tty=tty), workdir=self.workdir,
            user="node", interactive=True, tty=tty,
        )

    def run_env(self, *, tty: bool) -> dict[str, str]:
        """The plain env a run gets on its argv: the guest's, and with a terminal the user's
        terminal type over it (as `docker exec -e` overrides a container's env)."""
        return {**self.guest_env, **terminal_env(os.environ)} if tty else dict(self.guest_env)

    def agent_argv(self, extra: list[str], *, tty: bool, status_file: str | None = None) -> list[str]:
        return self.run_argv([self.agent_command, *extra], tty=tty, status_file=status_file)

    def status_file(self) -> str:
        """Where one run of the agent records its exit status (a new path on every call)."""
        return new_status_file(STATUS_DIR)

    def exit_status(self, status_file: str) -> int | None:
        """The exit status a run recorded at ``status_file``, or None: the agent has not ended
        (its exec client went away without it), or the machine could not be asked."""
        return parse_status(self.exec(read_status_cmd(status_file)))

    def close(self) -> None:
        # The launcher owns the machine and tears it down; the handle holds nothing to release.
        self._closed = True
