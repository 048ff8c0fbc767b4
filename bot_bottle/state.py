"""State folders: ``~/.bot-bottle/state/<id>/`` with ``metadata.json`` and a ``.preserve`` marker.

A bottle's state is kept when the agent exits non-zero, on ``commit``, on a capability change or
when asked; otherwise it is removed at the end. ``resume`` reads the backend back from here.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import stat
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot_bottle.errors import BotBottleError

ID_RE = re.compile(r"^[a-z0-9]{6,32}$")
METADATA = "metadata.json"
PRESERVE = ".preserve"
# The agent container a teardown kept, stopped, because no snapshot holds its work (its name).
KEPT_AGENT = "kept-agent"
# Written when the agent is started: from then on its container holds work worth saving.
AGENT_RAN = "agent-ran"
CAPABILITY = "capability.json"
RESTART = "restart"
# Held (``flock``) by the one process that runs the bottle, start or resume, for the whole run:
# a second `resume` of the same bottle is refused before it creates anything (its containers,
# network and volume share the bottle's names, so its failed launch would remove the first's).
# The kernel releases it whatever ends the process, SIGKILL included.
RUN_LOCK = ".run.lock"


_REQUIRED = ("id", "agent", "bottle", "backend")
# Optional keys and the JSON types each may hold (None is always allowed).
_STRING: tuple[tuple[type, ...], str] = ((str,), "a string")
_OPTIONAL_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "cwd": _STRING, "started_in": _STRING, "label": _STRING, "color": _STRING,
    "started_at": ((int, float), "a number"), "image": _STRING, "snapshot": _STRING, "runtime": _STRING,
    "owner": _STRING, "exit_code": ((int,), "an integer"), "extra": ((dict,), "an object"),
}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


@dataclass
class Metadata:
    id: str
    agent: str
    bottle: str
    backend: str
    cwd: str | None = None  # the working tree copied into the workspace (``start --cwd``), if any
    # The folder whose ``./.bot-bottle/agents/`` held the agent (``BottlePlan.agent_folder``);
    # ``resume`` looks there again. None for an agent in the home, and in older metadata.
    started_in: str | None = None
    label: str | None = None
    color: str | None = None
    started_at: float = field(default_factory=time.time)
    image: str | None = None
    snapshot: str | None = None
    runtime: str | None = None
    owner: str | None = None
    exit_code: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "metadata") -> Metadata:
        """Metadata read back from JSON; a wrong shape is a ``BotBottleError`` naming ``source``."""

        def bad(problem: str) -> BotBottleError:
            return BotBottleError(f"{source}: not valid bottle metadata: {problem}",
                                  hint="remove the state folder, or restore its metadata.json")

        if not isinstance(data, dict):
            raise bad(f"expected a JSON object, found {_json_type(data)}")
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise bad(f"missing {'key' if len(missing) == 1 else 'keys'} {', '.join(missing)}")
        for key in _REQUIRED:
            if not isinstance(data[key], str) or not data[key]:
                raise bad(f"'{key}' must be a non-empty string, found {_json_type(data[key])}")
        for key, (types, wanted) in _OPTIONAL_TYPES.items():
            value = data.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
                raise bad(f"'{key}' must be {wanted} or null, found {_json_type(value)}")
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("started_at") is None:
            values.pop("started_at", None)
        if values.get("extra") is None:
            values.pop("extra", None)
        return cls(**values)


def unwritable(path: Path, exc: OSError, what: str) -> BotBottleError:
    """The error for ``path`` that cannot be written: a full disk, a read-only or foreign
    ~/.bot-bottle are the user's to fix, so say which and where rather than fail as a bug."""
    return BotBottleError(f"{what} {path}: {exc.strerror or exc}", hint=unwritable_hint(path.parent, exc))


def unwritable_hint(folder: Path, exc: OSError) -> str:
    """What to do when writing under ``folder`` failed with ``exc``."""
    return {
        errno.ENOSPC: f"free some space on the disk holding {folder} (`df -h {folder}` shows it), then retry",
        errno.EDQUOT: f"your disk quota is used up; free some space under {folder}, then retry",
        errno.EROFS: f"{folder} is on a read-only file system; run with a HOME you can write to",
        errno.EACCES: f"make {folder} yours and writable, or run with a HOME you can write to",
    }.get(exc.errno or 0, f"check that {folder} is a folder you can write to")


def not_a_folder(path: Path) -> str | None:
    """What stands at ``path`` where a folder belongs (``"a file"``, ``"a symlink to X, which
    does not exist"``...), or None when it is a folder, nothing is there yet, or it cannot be told
    (a folder above that cannot be searched: the operation itself reports that)."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return None
    if stat.S_ISDIR(mode):
        return None
    if stat.S_ISLNK(mode):
        return _symlink_not_a_folder(path)
    if stat.S_ISREG(mode):
        return "a file"
    return "not a file nor a folder (a device, a pipe or a socket)"


def _symlink_not_a_folder(path: Path) -> str | None:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    try:
        if path.is_dir():
            return None
        followed = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"a symlink (to {target}) that leads back to itself"
        return f"a symlink to {target}, which does not exist"
    return f"a symlink to {target}, which is {'a file' if stat.S_ISREG(followed.st_mode) else 'not a folder'}"


def first_not_a_folder(path: Path, *, within: Path | None = None) -> tuple[Path, str] | None:
    """The first of ``path`` and the folders above it (from the top, those under ``within`` when
    given) that is something other than a folder, with what it is (``not_a_folder``); or None.
    A folder that cannot be made is named for what blocks it, not for the folder asked for."""
    chain = [path, *path.parents]
    if within is not None and within in chain:
        del chain[chain.index(within) + 1:]
    for candidate in reversed(chain):
        what = not_a_folder(candidate)
        if what is not None:
            return candidate, what
    return None


def not_a_folder_hint(path: Path, what: str) -> str:
    """How to clear ``path``, found to be ``what`` where a folder belongs."""
    if what.startswith("a symlink to ") and what.endswith("which does not exist"):
        return f"make the folder it points to, or remove the symlink {path}"
    return f"move it aside (for example `mv {path} {path}.old`); bot-bottle needs a folder there"


class NotAFolderError(BotBottleError):
    """A path bot-bottle keeps its files in is something other than a folder: nothing can be read
    from it or written to it until it is moved aside (the host's state, exit 1, as a read-only one)."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(f"{path} is not a folder: it is {what}", hint=not_a_folder_hint(path, what))
        self.path = path
        self.what = what


def require_folders(*paths: Path, within: Path | None = None) -> None:
    """Refuse with ``NotAFolderError`` when one of ``paths`` (or a folder above it, under
    ``within``) stands where a folder belongs but is not one."""
    for path in paths:
        found = first_not_a_folder(path, within=within)
        if found is not None:
            raise NotAFolderError(*found)


class StateDir:
    def __init__(self, root: Path, bottle_id: str) -> None:
        if not ID_RE.match(bottle_id):
            raise BotBottleError(f"'{bottle_id}' is not a bottle id", hint="`bot-bottle list --running` shows them")
        self.root = root
        self.id = bottle_id
        self.path = root / bottle_id

    @property
    def metadata_path(self) -> Path:
        return self.path / METADATA

    def exists(self) -> bool:
        return self.metadata_path.is_file()

    def create(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a full or read-only disk, or a file where the folder belongs
            raise unwritable(self.path, exc, "cannot make the bottle's state folder") from None
        try:
            self.path.mkdir(mode=0o700, exist_ok=False)
        except FileExistsError:
            raise  # an id clash: the caller's to handle, not the disk's
        except OSError as exc:
            raise unwritable(self.path, exc, "cannot make the bottle's state folder") from None

    def write(self, meta: Metadata) -> None:
        tmp = self.path / f".{METADATA}.tmp"
        try:
            tmp.write_text(json.dumps(meta.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
            os.replace(tmp, self.metadata_path)
        except OSError as exc:
            with contextlib.suppress(OSError):  # a read-only disk keeps it, as it keeps everything
                tmp.unlink(missing_ok=True)  # a half-written file would only confuse the next reader
            raise BotBottleError(f"cannot save the bottle's metadata {self.metadata_path}: {exc.strerror or exc}",
                                 hint=unwritable_hint(self.root, exc)) from None

    def read(self) -> Metadata:
        try:
            data = json.loads(self.metadata_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BotBottleError(
                f"no saved bottle '{self.id}' (looked in {self.path})",
                hint="`bot-bottle list --running` shows running and preserved bottles",
            ) from None
        except json.JSONDecodeError as exc:
            raise BotBottleError(f"{self.metadata_path}: unreadable metadata ({exc.msg} at line {exc.lineno})") from None
        except UnicodeDecodeError:
            raise BotBottleError(f"{self.metadata_path}: unreadable metadata (not UTF-8 text)") from None
        except OSError as exc:
            raise BotBottleError(f"{self.metadata_path}: unreadable metadata ({exc.strerror or exc})") from None
        meta = Metadata.from_dict(data, source=str(self.metadata_path))
        if meta.id != self.id:  # a copied or hand-edited folder: resume and stop would act on the wrong one
            raise BotBottleError(f"{self.metadata_path}: unreadable metadata (it names bottle {meta.id!r}, "
                                 f"not its folder's {self.id!r})")
        return meta

    @property
    def preserved(self) -> bool:
        return (self.path / PRESERVE).exists()

    def preserve(self, reason: str) -> None:
        # The time makes each preservation distinct, so a run can tell a commit made during it.
        (self.path / PRESERVE).write_text(f"{reason}\n{time.time():.6f}\n", encoding="utf-8")

    def preserve_marker(self) -> str | None:
        try:
            return (self.path / PRESERVE).read_text(encoding="utf-8")
        except OSError:
            return None

    @property
    def preserve_reason(self) -> str | None:
        marker = self.preserve_marker()
        return marker.splitlines()[0] if marker else None

    def keep_agent(self, container: str) -> None:
        """Record that the teardown kept ``container`` because no snapshot holds its work:
        ``cleanup`` keeps it for ``--all`` only."""
        (self.path / KEPT_AGENT).write_text(container + "\n", encoding="utf-8")

    def clear_kept_agent(self) -> None:
        (self.path / KEPT_AGENT).unlink(missing_ok=True)

    def kept_agent(self) -> str | None:
        try:
            return (self.path / KEPT_AGENT).read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def mark_agent_ran(self) -> None:
        """Record that the agent was started in this bottle: from here on its container holds
        work, which ``cleanup`` saves before removing a bottle whose bot-bottle process is gone
        (a start killed before this point left nothing worth a snapshot)."""
        (self.path / AGENT_RAN).touch()

    def agent_ran(self) -> bool:
        return (self.path / AGENT_RAN).exists()

    # Packages a capability change added during the current run. The next snapshot of the running
    # container (the agent exiting non-zero, a commit) starts from the container, which lacks them:
    # they are added again on top, so no later snapshot silently drops an approved change.
    def record_capability(self, packages: tuple[str, ...]) -> None:
        known = self.capability_packages()
        merged = known + tuple(p for p in packages if p not in known)
        tmp = self.path / f".{CAPABILITY}.tmp"
        tmp.write_text(json.dumps({"packages": list(merged)}) + "\n", encoding="utf-8")
        os.replace(tmp, self.path / CAPABILITY)

    def capability_packages(self) -> tuple[str, ...]:
        try:
            data = json.loads((self.path / CAPABILITY).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return ()
        return tuple(str(p) for p in data.get("packages") or ())

    def clear_capability(self) -> None:
        (self.path / CAPABILITY).unlink(missing_ok=True)

    # A restart asked of the bottle's owner (``lifecycle.run_bottle``): written before the agent
    # container is stopped, so the owner, seeing its agent end, relaunches the same bottle from
    # its snapshot instead of tearing it down. The first line says why, for the progress line.
    def request_restart(self, reason: str) -> None:
        tmp = self.path / f".{RESTART}.tmp"
        tmp.write_text(f"{reason.splitlines()[0] if reason else 'restart requested'}\n{time.time():.6f}\n",
                       encoding="utf-8")
        os.replace(tmp, self.path / RESTART)

    def restart_request(self) -> str | None:
        """Why a restart was asked for, or None when none is pending."""
        try:
            text = (self.path / RESTART).read_text(encoding="utf-8")
        except OSError:
            return None
        return (text.splitlines() or ["restart requested"])[0]

    def clear_restart(self) -> None:
        (self.path / RESTART).unlink(missing_ok=True)

    def hold_run(self) -> RunLock:
        """Take this bottle's run lock (see ``RUN_LOCK``); refuse when another process holds it."""
        return RunLock.take(self)

    def unpreserve(self) -> None:
        (self.path / PRESERVE).unlink(missing_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class RunLock:
    """The run lock of one bottle, held until ``release()`` (or the process's end)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def take(cls, sdir: StateDir) -> RunLock:
        path = sdir.path / RUN_LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            sdir.read()  # no state folder: the clear "no saved bottle" error
            raise
        except OSError as exc:
            raise BotBottleError(f"{path}: cannot take the bottle's run lock ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip()
            os.close(fd)
            raise BotBottleError(
                f"bottle {sdir.id} is already running from another bot-bottle process"
                + (f" ({holder})" if holder else ""),
                hint=f"`bot-bottle list --running` shows it; `bot-bottle stop {sdir.id}` ends it, "
                     "then it can be resumed",
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # Who holds it, for the message above: a pid, never anything secret.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()}\n".encode(), 0)
        return cls(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor releases the flock


def all_states(root: Path) -> list[StateDir]:
    if not root.is_dir():
        return []
    return [StateDir(root, p.name) for p in sorted(root.iterdir()) if p.is_dir() and ID_RE.match(p.name)]
