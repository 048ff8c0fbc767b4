"""``DockerBottle``: the bottle handle for an agent container.

Every command runs through ``subprocess.run`` here, as ``docker exec -u <user> ...``, so the user
is always explicit on the argv. The agent (and any command run in its place) starts through the
launcher that sources the secret env file (``secret_env``), which lives on a tmpfs in the
container: never in its config, never in a snapshot.

The agent's own run is wrapped once more (``recorded_argv``) so that it leaves its exit status in
the bottle: the host cannot trust the exit status of its exec client alone (see ``RECORDER``).
"""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from bot_bottle.backend import Bottle, ExecResult
from bot_bottle.backend.agent_setup import terminal_env
from bot_bottle.backend.secret_env import LAUNCHER_NAME, launcher_argv
from bot_bottle.backend import archive as archive_mod
from bot_bottle.backend.docker.engine import DockerError
from bot_bottle.errors import BotBottleError

if TYPE_CHECKING:
    from bot_bottle.backend.docker.engine_api import EngineAPI

WORKDIR = "/home/node/workspace"
# A tmpfs only the agent user can enter: ``docker commit`` does not capture mounts.
SECRET_ENV_DIR = "/run/bot-bottle-env"
SECRET_ENV_FILE = f"{SECRET_ENV_DIR}/agent.env"

# Runs the command as its child (never ``exec``) and writes its exit status to the file named by
# its first argument once it ends. The client of a ``docker exec`` that dies of SIGINT or SIGTERM
# exits 0 and leaves the command running: only this file tells "the agent finished" from "the
# client went away". The trap keeps this shell alive through the signals a TTY's Ctrl-C or a
# hangup sends the whole process group (the agent, its child, gets them with default handling,
# as a trap set here is reset in children), so the agent's own answer to them is what is written.
# Stdin, stdout and the terminal are inherited unchanged.
RECORDER = ('f="$1"; shift; trap : INT TERM HUP QUIT; "$@"; s=$?; '
            '{ echo "$s" > "$f"; } 2>/dev/null; exit "$s"')
STATUS_NAME = "agent-exit"

# What `docker inspect` prints for ``memory_end``: the container's status, whether the engine
# ended it for going over its memory limit, and that limit in bytes (0: none set).
MEMORY_END_FORMAT = "{{.State.Status}} {{.State.OOMKilled}} {{.HostConfig.Memory}}"

# A copy in larger than this goes through the CLI even while provisioning on the engine's socket
# (``provisioning_on``): the socket's exec holds its whole input in memory, the CLI streams it.
API_ARCHIVE_MAX = 4 * 1024 * 1024
# An exec's limit on the socket when the bottle was given none (the CLI's then waits forever).
API_EXEC_TIMEOUT = 3600.0


def recorded_argv(status_file: str, inner: list[str]) -> list[str]:
    """``inner`` (an argv run inside the bottle) wrapped so its exit status lands in ``status_file``."""
    return ["sh", "-c", RECORDER, LAUNCHER_NAME, status_file, *inner]


def new_status_file(folder: str) -> str:
    """A path in ``folder`` that no other run uses: a stale file must never answer for this run."""
    return f"{folder}/{STATUS_NAME}-{secrets.token_hex(8)}"


def run_exec(argv: list[str], timeout: float | None, *, env: Mapping[str, str] | None = None,
             clean_stderr: Callable[[str], str] | None = None) -> ExecResult:
    """``argv`` (the host's command that runs one in the bottle) run to its end; one still running
    after ``timeout`` seconds is ended and answers status 124, as ``timeout(1)`` does."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return ExecResult(124, "", f"timed out after {timeout:g} s")
    stderr = clean_stderr(proc.stderr) if clean_stderr is not None else proc.stderr
    return ExecResult(proc.returncode, proc.stdout or "", stderr)


def copy_source(host_path: str | Path) -> Path:
    """The host file or folder a ``cp_in`` copies; a missing one is the clear error, raised
    before anything runs in the bottle."""
    source = Path(host_path)
    if not source.exists():
        raise BotBottleError(f"cannot copy {source} into the bottle: it does not exist")
    return source


def read_status_cmd(status_file: str) -> str:
    """Print the recorded status and remove the file (a snapshot must not carry it)."""
    quoted = shlex.quote(status_file)
    return f"cat {quoted} && rm -f {quoted}"


def parse_status(result: ExecResult) -> int | None:
    """The recorded exit status, or None when none was recorded (or the bottle did not answer)."""
    text = result.stdout.strip()
    if not result.ok or not text.isdigit():
        return None
    return int(text)


def terminal_flags(host_env: Mapping[str, str]) -> list[str]:
    """``terminal_env`` as `docker exec` flags (no secret is ever among them)."""
    return [arg for name, value in terminal_env(host_env).items() for arg in ("-e", f"{name}={value}")]


def parse_memory_end(text: str) -> int | None:
    """The memory limit (bytes, 0 for none) a container was ended for going over, from
    ``MEMORY_END_FORMAT``'s answer; None when it runs or ended for anything else (a `docker
    stop` or `kill` leaves OOMKilled false)."""
    fields = text.split()
    if len(fields) != 3 or fields[0] == "running" or fields[1] != "true" or not fields[2].isdigit():
        return None
    return int(fields[2])


class DockerBottle(Bottle):
    def __init__(
        self,
        container: str,
        teardown: Callable[[], None] | None = None,
        prompt_path_in_container: str | None = None,
        agent_command: str = "claude",
        *,
        docker: str = "docker",
        workdir: str = WORKDIR,
        exec_timeout: float | None = 300,
        secret_env_file: str = SECRET_ENV_FILE,
        sidecar: str | None = None,
    ) -> None:
        self.container = container
        self.sidecar = sidecar  # its sidecar container: the agent's only way out
        self.secret_env_file = secret_env_file
        # Beside the secret env file: the agent user's tmpfs, which no snapshot captures.
        self.status_dir = str(PurePosixPath(secret_env_file).parent)
        self._teardown = teardown
        self.prompt_path = prompt_path_in_container
        self.agent_command = agent_command
        self._docker = docker
        self.workdir = workdir
        self._exec_timeout = exec_timeout
        self._closed = False
        # The engine's socket while the launch provisions the bottle (``provisioning_on``): its
        # commands then cost no CLI client's start. Never after: what runs later (the operator's
        # commands, the agent) goes through the CLI as it always did.
        self._api: EngineAPI | None = None

    @contextmanager
    def provisioning_on(self, api: EngineAPI | None) -> Iterator[None]:
        """Run ``exec``, ``cp_in`` and ``write_private`` on ``api`` (None: the CLI) within the block."""
        self._api = api
        try:
            yield
        finally:
            self._api = None

    def _api_exec(self, api: EngineAPI, argv: list[str], user: str, stdin: bytes | None,
                  timeout: float | None) -> ExecResult:
        """An exec on the engine's socket, its failure to run read as the CLI's (status 126 and
        the engine's words), as ``docker exec`` reports one."""
        try:
            result = api.exec(self.container, argv, user=user, stdin=stdin,
                              timeout=timeout if timeout is not None else API_EXEC_TIMEOUT)
        except DockerError as exc:
            return ExecResult(126, "", exc.stderr or str(exc))
        return ExecResult(result.returncode, result.stdout, result.stderr)

    @property
    def prompt_path_in_container(self) -> str | None:
        return self.prompt_path

    @prompt_path_in_container.setter
    def prompt_path_in_container(self, path: str | None) -> None:
        self.prompt_path = path

    def exec_argv(self, cmd: str, *, user: str = "node") -> list[str]:
        return [self._docker, "exec", "-u", user, self.container, "sh", "-c", cmd]

    def exec(self, cmd: str, *, user: str = "node") -> ExecResult:
        if self._api is not None:
            return self._api_exec(self._api, ["sh", "-c", cmd], user, None, self._exec_timeout)
        return run_exec(self.exec_argv(cmd, user=user), self._exec_timeout)

    def cp_in(self, host_path: str | Path, guest_path: str, *, user: str = "node") -> None:
        """Copy a file or folder in, owned by ``user``: a tar stream unpacked by ``user`` itself.

        ``docker cp`` would keep host ownership, and the agent container has no CAP_CHOWN to fix
        it afterwards, so the unpacking runs as the user who must own the result.
        """
        source = copy_source(host_path)
        guest = PurePosixPath(guest_path)
        with tempfile.TemporaryFile() as archive:
            archive_mod.pack(archive, source, guest.name)
            timeout = archive_mod.copy_timeout(self._exec_timeout, archive.tell())
            size = archive.tell()
            archive.seek(0)
            parent = shlex.quote(str(guest.parent))
            argv = ["sh", "-c", f"mkdir -p {parent} && tar -x --no-same-owner -C {parent}"]
            if self._api is not None and size <= API_ARCHIVE_MAX:
                done = self._api_exec(self._api, argv, user, archive.read(), timeout)
                returncode, stderr = done.returncode, done.stderr
            else:
                try:
                    proc = subprocess.run([self._docker, "exec", "-i", "-u", user, self.container, *argv],
                                          stdin=archive, capture_output=True, timeout=timeout)
                except subprocess.TimeoutExpired:
                    raise archive_mod.timed_out(source, timeout) from None
                returncode, stderr = proc.returncode, proc.stderr.decode(errors="replace")
        if returncode != 0:
            raise BotBottleError(f"could not copy {source} into the bottle at {guest_path}: {stderr.strip()}")

    def write_private(self, guest_path: str, text: str, *, user: str = "node") -> None:
        """Write ``text`` to ``guest_path`` as ``user``, mode 600: over `docker exec`'s input,
        so it is never a file on the host (nor an argv), and renamed into place whole."""
        path = PurePosixPath(guest_path)
        part = shlex.quote(f"{path}.part")
        script = (f"umask 077 && mkdir -p {shlex.quote(str(path.parent))} && cat > {part} && "
                  f"mv {part} {shlex.quote(str(path))}")
        if self._api is not None:
            # On the exec's stdin: neither in its command nor in any request body.
            proc: ExecResult | subprocess.CompletedProcess[str] = self._api_exec(
                self._api, ["sh", "-c", script], user, text.encode("utf-8"), self._exec_timeout)
        else:
            try:
                proc = subprocess.run([self._docker, "exec", "-i", "-u", user, self.container, "sh", "-c", script],
                                      input=text, capture_output=True, text=True, timeout=self._exec_timeout)
            except subprocess.TimeoutExpired:
                raise BotBottleError(f"writing {guest_path} into {self.container} did not finish "
                                     f"within {self._exec_timeout:g} s") from None
        if proc.returncode != 0:
            raise BotBottleError(f"could not write {guest_path} into {self.container}: {proc.stderr.strip()}")

    def run_argv(self, command: list[str], *, tty: bool, status_file: str | None = None) -> list[str]:
        """The host argv that runs ``command`` as the agent user, with the agent's whole env.

        With ``status_file``, the command's exit status is also written there (``exit_status``).
        """
        flags = ["-it", *terminal_flags(os.environ)] if tty else ["-i"]
        inner = launcher_argv(self.secret_env_file, command)
        if status_file is not None:
            inner = recorded_argv(status_file, inner)
        return [self._docker, "exec", *flags, "-u", "node", "-w", self.workdir, self.container, *inner]

    def agent_argv(self, extra: list[str], *, tty: bool, status_file: str | None = None) -> list[str]:
        return self.run_argv([self.agent_command, *extra], tty=tty, status_file=status_file)

    def status_file(self) -> str:
        """Where one run of the agent records its exit status (a new path on every call)."""
        return new_status_file(self.status_dir)

    def exit_status(self, status_file: str) -> int | None:
        """The exit status a run recorded at ``status_file``, or None: the agent has not ended
        (its exec client went away without it), or the bottle could not be asked."""
        return parse_status(self.exec(read_status_cmd(status_file)))

    def _state(self, container: str) -> str | None:
        """``running``, ``stopped`` or ``gone``; None when the engine could not say."""
        try:
            proc = subprocess.run([self._docker, "inspect", "-f", "{{.State.Running}}", container],
                                  capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if proc.returncode != 0:
            return "gone" if "no such" in (proc.stderr or "").lower() else None
        return "stopped" if proc.stdout.strip() == "false" else "running"

    def running(self) -> bool:
        """Is the container still running? A failing engine counts as yes (nothing is ended on
        a hiccup); a container that is gone or stopped is no."""
        return self._state(self.container) not in ("stopped", "gone")

    def sidecar_stopped(self) -> str | None:
        """Why this bottle's sidecar stopped while the agent runs on (``sidecar_watch.stopped_why``)."""
        from bot_bottle.backend.docker.sidecar_watch import stopped_why

        return stopped_why(self.sidecar) if self.sidecar is not None else None

    def memory_end(self) -> int | None:
        """The memory limit (bytes, 0 for none) the engine ended the container for going over, or
        None: it runs, it ended otherwise, or the engine could not say. Under gVisor the whole
        sandbox ends at the limit, the agent's exec client with it."""
        try:
            proc = subprocess.run([self._docker, "inspect", "-f", MEMORY_END_FORMAT, self.container],
                                  capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return parse_memory_end(proc.stdout) if proc.returncode == 0 else None

    def run(self, command: list[str]) -> ExecResult:
        """Run ``command`` the way the agent runs (its user, workdir and whole env), no TTY."""
        try:
            proc = subprocess.run(self.run_argv(command, tty=False), capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL, timeout=self._exec_timeout)
        except subprocess.TimeoutExpired:
            return ExecResult(124, "", f"timed out after {self._exec_timeout:g} s")
        return ExecResult(proc.returncode, proc.stdout, proc.stderr)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._teardown is not None:
            self._teardown()
