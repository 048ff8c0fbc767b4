"""The supervise store: one SQLite database, ``~/.bot-bottle/supervise.db``.

It holds the proposal queue of every bottle, the audit log (who decided what, when, why, and
the state before and after), the egress events shipped from each sidecar and, in the same table,
what each bottle's terminal filter held back (``record_terminal``). The console, the
``--once`` printer and the demo all open it, possibly at the same time, so:

- WAL journal and a busy timeout: readers never block the writer, two writers wait for each
  other instead of failing;
- every write is one ``BEGIN IMMEDIATE`` transaction;
- a status change names the status it expects (``update_proposal(..., expect=...)``), so two
  operators deciding the same proposal cannot both win: the second gets ``StaleProposal``;
- egress events are keyed by (bottle, sidecar incarnation, byte offset in the sidecar's log),
  so importing the same lines twice stores them once.

The schema is versioned: ``schema_version`` holds the version, ``MIGRATIONS`` is the ordered
list of steps from an empty file to the current version, each applied in its own transaction.
A database written by a newer bot-bottle is refused with a clear error rather than misread.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import json
import operator
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot_bottle.errors import BotBottleError

DB_NAME = "supervise.db"
BUSY_TIMEOUT_MS = 10_000
DAMAGED_HINT = ("move the file aside (with any -wal and -shm files next to it) and bot-bottle starts a new "
                "one; keep the old one if you need its audit log")
# Egress events kept per bottle: the console shows the newest; the sidecar's own log (kept with a
# preserved bottle's state) has them all.
MAX_EVENTS_PER_BOTTLE = 10_000
# Proposals that ended with nobody deciding them (the agent's wait ran out, its bottle stopped)
# kept per bottle. An agent can make one every few seconds for as long as it runs, each up to
# 16 KiB, and nothing reads them back: without a bound, a flood of asks fills the host's disk.
# The audit rows saying they expired are kept (a few hundred bytes each).
MAX_UNDECIDED_PER_BOTTLE = 500
# Proposals an ambiguous id or prefix names in its error: enough to see which to type, never a
# screenful of them.
MAX_CANDIDATES_SHOWN = 5
# What the terminal filter held back of a bottle's agent (``pty_relay``) is kept in the events
# table under this source, next to the egress events (whose sources are sidecar container ids),
# so the console and `bot-bottle logs` show both. Its records say ``"event": "terminal"`` (an
# egress decision says ``"egress"``) and name kinds and counts only, never a held byte.
TERMINAL_SOURCE = "terminal"
TERMINAL_EVENT = "terminal"
# Terminal entries kept per bottle, apart from the egress events' bound (a flood of requests
# must not push them out). Once a bottle has this many, a later hold is added to its newest
# entry (whose counts grow and whose time moves on): no flood of sequences grows the table.
MAX_TERMINAL_EVENTS_PER_BOTTLE = 200
# Kinds named in one terminal entry; holds of any further kind are counted under OTHER_KINDS
# (the filter names some kinds by number, and an agent can print many numbers).
MAX_TERMINAL_KINDS = 32
MAX_KIND_CHARS = 80
OTHER_KINDS = "other kinds"
# Next to the database, the folder of the locks a process applying a decision holds (one file per
# proposal, named by its key): the kernel drops a lock when its process ends, however it ends,
# and keeps it while the process is stopped or the machine sleeps, so a sync can tell a live apply
# from a dead one without reading any clock.
APPLYING_SUFFIX = "-applying"
# What SQLite's text decoding says of bytes that are not UTF-8 (``sqlite3.OperationalError``).
_UNDECODABLE = "Could not decode to UTF-8"
# SQLite's answers when the file or its folder cannot be written (a read-only file system, a
# folder that is not the user's): the file is fine, the place is not. SQLite opens such a file
# read-only without a word, so the first write is where it shows.
_NOT_WRITABLE_CODES = frozenset({sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM})


def not_writable(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite saying the database or its folder cannot be written."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.OperationalError) and isinstance(code, int) and code & 0xFF in _NOT_WRITABLE_CODES


def writable_hint(path: Path | str) -> str:
    """What to check when the database at ``path`` cannot be written."""
    folder = Path(path).parent
    return (f"check that {folder} and the file in it are yours and writable (not on a read-only file system); "
            "bot-bottle keeps its -wal and -shm files next to it")


class StoreError(BotBottleError):
    """The database cannot be used (unreadable, newer schema, missing row)."""


class StaleProposal(StoreError):
    """The proposal changed status since it was read (someone else decided it first)."""


class UnknownProposal(StoreError):
    """No proposal, or more than one, goes by what the operator typed (``candidates`` names
    the first few of those that do, as ``BOTTLE/ID``)."""

    def __init__(self, message: str, *, hint: str | None = None, candidates: tuple[str, ...] = ()) -> None:
        super().__init__(message, hint=hint)
        self.candidates = candidates


class NotDamaged(StoreError):
    """A row asked to be dropped as damaged that reads whole: it is decided, never dropped."""


class DamagedRow(StoreError):
    """A row with a column that cannot be read back (not UTF-8, not JSON, a value of a type or
    shape bot-bottle never writes there): the file's fault, not a bug. Names the row and the
    column; ``key`` is a proposal's ``#KEY`` (None for a row of another table)."""

    def __init__(self, row: str, column: str, why: str, *, key: int | None = None) -> None:
        super().__init__(f"{row}, column {column}: {why}", hint=DAMAGED_HINT)
        self.row = row
        self.column = column
        self.why = why
        self.key = key
        # What becomes of the row when a sync meets it (a cursor is replaced by its next import).
        self.fate = "left as it is"


# -- schema ------------------------------------------------------------------------------------

_V1 = """
CREATE TABLE proposals (
    key          INTEGER PRIMARY KEY,
    bottle_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    justification TEXT NOT NULL DEFAULT '',
    timeout_s    REAL,
    status       TEXT NOT NULL,
    created_at   REAL NOT NULL,
    imported_at  REAL NOT NULL,
    decided_at   REAL,
    verdict      TEXT,
    reason       TEXT,
    change       TEXT,
    operator     TEXT,
    UNIQUE (bottle_id, id)
);
CREATE TABLE audit (
    seq          INTEGER PRIMARY KEY,
    at           REAL NOT NULL,
    operator     TEXT NOT NULL,
    action       TEXT NOT NULL,
    bottle_id    TEXT,
    proposal_key INTEGER,
    reason       TEXT,
    before       TEXT,
    after        TEXT
);
CREATE TABLE egress_events (
    bottle_id    TEXT NOT NULL,
    source       TEXT NOT NULL,
    offset       INTEGER NOT NULL,
    ts           TEXT,
    record       TEXT NOT NULL,
    imported_at  REAL NOT NULL,
    PRIMARY KEY (bottle_id, source, offset)
);
CREATE TABLE event_cursors (
    bottle_id    TEXT NOT NULL,
    source       TEXT NOT NULL,
    offset       INTEGER NOT NULL,
    updated_at   REAL NOT NULL,
    PRIMARY KEY (bottle_id, source)
);
"""


def _v2(conn: sqlite3.Connection) -> None:
    """v2: when a proposal last changed and why applying it failed; audit rows say whether the
    action succeeded; indexes for the console's two hot queries."""
    conn.execute("ALTER TABLE proposals ADD COLUMN updated_at REAL")
    conn.execute("ALTER TABLE proposals ADD COLUMN error TEXT")
    # A v1 row last changed when it was decided, or else when it was imported.
    conn.execute("UPDATE proposals SET updated_at = COALESCE(decided_at, imported_at)")
    conn.execute("ALTER TABLE audit ADD COLUMN outcome TEXT NOT NULL DEFAULT 'ok'")
    conn.execute("CREATE INDEX proposals_by_status ON proposals (status, created_at)")
    conn.execute("CREATE INDEX events_by_bottle ON egress_events (bottle_id, imported_at)")


def _v3(conn: sqlite3.Connection) -> None:
    """v3: the events pane's query (a bottle's newest events, by import time, source and offset)
    and the per-bottle bound on events read in index order, not by sorting every row of the
    bottle on each refresh. The v2 index is a prefix of this one, so it goes: one index fewer to
    keep up on every import. Nothing else changes: a v2 file's rows are all kept as they are."""
    conn.execute("CREATE INDEX IF NOT EXISTS events_newest ON egress_events (bottle_id, imported_at, source, offset)")
    conn.execute("DROP INDEX IF EXISTS events_by_bottle")


Migration = Callable[[sqlite3.Connection], None]


def _script(sql: str) -> Migration:
    def run(conn: sqlite3.Connection) -> None:
        for statement in sql.split(";"):
            if statement.strip():
                conn.execute(statement)

    return run


# Ordered: MIGRATIONS[i] takes a database from version i to version i + 1. Append, never edit.
MIGRATIONS: tuple[Migration, ...] = (_script(_V1), _v2, _v3)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection, *, target: int = SCHEMA_VERSION, path: Path | str = "supervise.db") -> int:
    """Bring ``conn`` to ``target``, one transaction per step; return the version reached.

    Two processes opening a fresh database at once both get here: the version is read again
    inside each step's write lock, so each step runs exactly once.
    """
    if target > SCHEMA_VERSION:
        raise StoreError(f"no migration to schema version {target} (latest is {SCHEMA_VERSION})")
    current = _known(schema_version(conn), path)
    while current < target:
        with _immediate(conn):
            # Read again under the write lock: another process may have migrated meanwhile, to
            # this version or (a newer bot-bottle) past it, which is refused, never stepped on.
            current = _known(schema_version(conn), path)
            if current >= target:
                break
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            MIGRATIONS[current](conn)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (current + 1,))
        current = _known(schema_version(conn), path)
    return current


def _known(version: int, path: Path | str) -> int:
    """``version``, or a ``StoreError`` naming the file when a newer bot-bottle wrote it: its
    rows may mean what this one cannot tell, and a step back would lose them."""
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema version {version} is newer than this bot-bottle understands ({SCHEMA_VERSION}); "
            "nothing in it was read or changed",
            hint="upgrade bot-bottle, or move the file aside (with any -wal and -shm files next to it) to start a "
                 "new one",
        )
    return version


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taking the write lock up front (no upgrade deadlocks)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, with a busy timeout."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from bot_bottle.state import first_not_a_folder, not_a_folder_hint

        # A file (or a dangling symlink) where its folder belongs is named, not "File exists".
        blocked = first_not_a_folder(path.parent) if exc.errno in (errno.EEXIST, errno.ENOTDIR) else None
        if blocked is not None:
            raise StoreError(f"{path}: cannot make the folder of the supervise database: {blocked[0]} is not a "
                             f"folder, it is {blocked[1]}", hint=not_a_folder_hint(*blocked)) from None
        raise StoreError(f"{path}: cannot make the folder of the supervise database ({exc.strerror or exc})",
                         hint=writable_hint(path)) from None
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _use_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.OperationalError as exc:  # cannot open or lock it: the file itself may be fine
        raise StoreError(f"{path}: cannot open the supervise database ({exc})", hint=writable_hint(path)) from None
    except sqlite3.DatabaseError as exc:
        # A damaged or foreign file ("not a database", "malformed"): the same way out as when a
        # file opens but cannot be migrated.
        raise StoreError(f"{path}: cannot open the supervise database ({exc})", hint=DAMAGED_HINT) from None
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
        try:
            (path.parent / name).chmod(0o600)  # decisions and reasons are the operator's business only
        except OSError:
            pass
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    """Put the file in WAL mode (it stays so: later openers find it set).

    Switching needs the file to itself for a moment, and SQLite answers "database is locked" at
    once, without its busy handler, when another process opening the same new file holds it
    then: retried for as long as the busy timeout, like any other lock wait.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            transient = "locked" in str(exc) or "busy" in str(exc)
            if not transient or time.monotonic() > deadline:
                raise
        time.sleep(0.01)


# -- rows --------------------------------------------------------------------------------------


def _loads(text: str | None, row: str, column: str) -> Any:
    """``text`` read back as JSON; ``DamagedRow`` naming ``row`` and ``column`` when it is not."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise DamagedRow(row, column, f"{_type_name(text)}, not JSON text")
    if len(text) > MAX_FIELD_CHARS:  # before parsing: tens of MiB of JSON would stall every refresh
        raise DamagedRow(row, column, _too_long(text))
    try:
        return json.loads(text)
    except (ValueError, TypeError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise DamagedRow(row, column, f"not JSON: {exc}") from None


def _load_object(text: str | None, row: str, column: str) -> dict[str, Any] | None:
    """``text`` read back as a JSON object (what bot-bottle writes there), or None."""
    value = _loads(text, row, column)
    if value is not None and not isinstance(value, dict):
        raise DamagedRow(row, column, f"a JSON {type(value).__name__}, not an object")
    return value


def _type_name(value: object) -> str:
    """What a value read back from SQLite is, in a message (never the value itself, which may be
    megabytes or bytes that are not text)."""
    if value is None:
        return "empty (NULL)"
    if isinstance(value, bytes):
        return f"{len(value)} bytes of binary data (a blob)"
    if isinstance(value, str):
        return f"text {_quoted(value)}"
    return f"the {type(value).__name__} {value!r}"


def _quoted(text: str, width: int = 40) -> str:
    """``text`` quoted with its escapes (each byte that is not UTF-8 as ``\\xNN``), cut at ``width``."""
    shown = text if len(text) <= width else text[:width] + "..."
    if _not_utf8(shown):
        return repr(shown.encode("utf-8", "surrogateescape"))[1:]
    return repr(shown)


def _too_long(text: str) -> str:
    return f"{len(text):,} characters, more than bot-bottle ever writes there ({MAX_FIELD_CHARS:,} at most)"


# What each column of a proposal must hold to be read (a value of another type is a hand edit, a
# crash's debris or a newer bot-bottle's): text, a time (seconds, a number), or either of them or
# nothing. SQLite keeps whatever a column is given, whatever its declared type.
_TEXT, _TIME, _TEXT_OR_NULL, _TIME_OR_NULL = "text", "time", "text?", "time?"
_PROPOSAL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("bottle_id", _TEXT), ("id", _TEXT), ("kind", _TEXT), ("justification", _TEXT_OR_NULL),
    ("timeout_s", _TIME_OR_NULL), ("status", _TEXT), ("created_at", _TIME), ("imported_at", _TIME),
    ("updated_at", _TIME_OR_NULL), ("decided_at", _TIME_OR_NULL), ("verdict", _TEXT_OR_NULL),
    ("reason", _TEXT_OR_NULL), ("operator", _TEXT_OR_NULL), ("error", _TEXT_OR_NULL),
)
# Payload fields the screens read, by what they must be (``channel.validate_payload`` writes
# them so): a list of text, a list of port numbers, or text. Other fields are not looked at.
_PAYLOAD_FIELDS: dict[str, str] = {
    **dict.fromkeys(("paths", "methods", "packages", "detectors", "places"), "texts"), "ports": "ports",
    **dict.fromkeys(("host", "repo", "ref", "old", "new", "finding", "route", "method", "path", "hold_id",
                     "dockerfile"), "text"),
}
# No text column of a row holds more than this (a whole proposal is at most 16 KiB): a larger one
# is damage, said as such rather than parsed and drawn on every refresh.
MAX_FIELD_CHARS = 1024 * 1024


def _column_fault(row: sqlite3.Row) -> tuple[str, str] | None:
    """The first column of a proposal row holding what bot-bottle never writes there (a value
    of another type, an empty required one, one too long to be real) and why; None for a whole
    row. This runs for every row of every refresh: a row whose column types were seen whole
    before costs a few C-level passes over its values, no Python loop."""
    values = tuple(row)
    checks = _column_checks(tuple(row.keys()))
    types = tuple(map(type, checks.pick(values)))
    if types in checks.whole:
        texts = [value for value in checks.pick_text(values) if value]
        if not texts or max(map(len, texts)) <= MAX_FIELD_CHARS:
            return None
    for index, column, want in checks.columns:
        value = values[index]
        kind = type(value)
        wants_text = want in (_TEXT, _TEXT_OR_NULL)
        if kind is str:
            if wants_text:
                if len(value) > MAX_FIELD_CHARS:
                    return column, _too_long(value)
                continue
        elif kind is float or kind is int:
            if not wants_text:
                continue
        elif value is None and want in (_TEXT_OR_NULL, _TIME_OR_NULL):
            continue
        if value is None:
            return column, "empty (NULL), where a value is needed"
        belongs = "text" if wants_text else "a time (a number of seconds)"
        return column, f"{_type_name(value)} where {belongs} belongs"
    if len(checks.whole) < 64:  # a few shapes in practice (times as int or float, empty columns)
        checks.whole.add(types)
    return None


@dataclass
class _ColumnChecks:
    columns: tuple[tuple[int, str, str], ...]  # each checked column's place, name, what it holds
    pick: Callable[[tuple[Any, ...]], tuple[Any, ...]]
    pick_text: Callable[[tuple[Any, ...]], tuple[Any, ...]]
    whole: set[tuple[type, ...]] = field(default_factory=set)  # column types of rows found whole


@functools.lru_cache(maxsize=8)
def _column_checks(keys: tuple[str, ...]) -> _ColumnChecks:
    """Where each checked column is among ``keys`` (a query's columns: a newer schema may have
    more), with what it must hold."""
    columns = tuple((keys.index(column), column, want) for column, want in _PROPOSAL_COLUMNS)
    texts = [index for index, _, want in columns if want.startswith(_TEXT)]
    return _ColumnChecks(columns, operator.itemgetter(*(index for index, _, _ in columns)),
                         operator.itemgetter(*texts))


def _payload_fault(payload: Mapping[str, Any]) -> str | None:
    """Why a payload field the screens read is not of the type bot-bottle writes; None when
    every one is."""
    for name, value in payload.items():
        want = _PAYLOAD_FIELDS.get(name)
        if want is None or value is None:
            continue
        if want == "text":
            if type(value) is not str:
                return f"its {name!r} is not text"
        elif type(value) is not list:
            return f"its {name!r} is not a list"
        elif value and {*map(type, value)} != ({str} if want == "texts" else {int}):
            return f"its {name!r} is not a list of {'text' if want == 'texts' else 'port numbers'}"
    return None


# What each audit column holds as ``_insert_audit`` writes it (``before``/``after`` are JSON,
# checked as they are parsed).
_AUDIT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("at", _TIME), ("operator", _TEXT), ("action", _TEXT), ("bottle_id", _TEXT_OR_NULL),
    ("proposal_key", "key?"), ("reason", _TEXT_OR_NULL), ("outcome", _TEXT),
)


def _audit_fault(row: sqlite3.Row) -> tuple[str, str] | None:
    """The first column of an audit row holding what bot-bottle never writes there, and why."""
    keys = row.keys()
    for column, want in _AUDIT_COLUMNS:
        if column not in keys:
            continue  # a v1 file's audit has no outcome column until it is migrated
        value = row[column]
        if value is None and want.endswith("?"):
            continue
        if want in (_TEXT, _TEXT_OR_NULL) and type(value) is str:
            if len(value) > MAX_FIELD_CHARS:
                return column, _too_long(value)
            continue
        if want == _TIME and type(value) in (int, float):
            continue
        if want == "key?" and type(value) is int:
            continue
        belongs = {"key?": "a proposal's key (a whole number)", _TIME: "a time (a number of seconds)"}.get(want, "text")
        return column, ("empty (NULL), where a value is needed" if value is None
                        else f"{_type_name(value)} where {belongs} belongs")
    return None


def _rescued_name(row: Mapping[str, Any]) -> str:
    """A damaged proposal row's name, its id and bottle shown whatever they hold."""
    return _proposal_name({k: _escaped(row[k]) if isinstance(row[k], str) else row[k]
                           for k in ("key", "bottle_id", "id")})


def _proposal_name(row: Mapping[str, Any]) -> str:
    return f"proposal {row['bottle_id']}/{row['id']} (#{row['key']})"


def _audit_name(row: Mapping[str, Any]) -> str:
    return f"audit row #{row['seq']}"


def _event_name(row: Mapping[str, Any]) -> str:
    return f"event {row['offset']} of bottle {row['bottle_id']} (from {row['source']})"


def _cursor_name(row: Mapping[str, Any]) -> str:
    return f"event cursor of bottle {row['bottle_id']}"


def _offset(value: object) -> bool:
    """A byte offset as bot-bottle writes it: a whole number, not below 0."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _undecodable(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and _UNDECODABLE in str(exc)


def _not_utf8(value: object) -> bool:
    """Text read back with its undecodable bytes escaped (``surrogateescape``): no string
    SQLite's own decoding returns holds a lone surrogate."""
    if not isinstance(value, str) or value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _escaped(value: object) -> object:
    """A rescued value as a message may quote it: each byte that is not UTF-8 as ``\\xNN``."""
    if isinstance(value, str) and _not_utf8(value):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value


def _check_utf8(row: sqlite3.Row, name: Callable[[Mapping[str, Any]], str]) -> None:
    """``DamagedRow`` naming ``row`` (by ``name``) and its first column that was not UTF-8."""
    for column in row.keys():
        if _not_utf8(row[column]):
            shown = {key: _escaped(row[key]) for key in row.keys()}
            # Only the proposals table has a ``key`` column (its rows' #KEY).
            key = row["key"] if "key" in row.keys() and isinstance(row["key"], int) else None
            raise DamagedRow(name(shown), column, "not UTF-8 text (bytes written by something other than "
                                                  "bot-bottle, or damaged)", key=key)


def _whole_text(sql_type: str, raw: bytes | None) -> bool:
    """Whether a column SQLite says is of ``sql_type``, read as ``raw`` bytes, is UTF-8 text."""
    if sql_type != "text" or raw is None:
        return False
    try:
        bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class ProposalRow:
    """A proposal as the store holds it: the sidecar's Proposal plus the host's decision."""

    key: int
    bottle_id: str
    id: str
    kind: str
    payload: dict[str, Any]
    justification: str
    timeout_s: float | None
    status: str
    created_at: float
    imported_at: float
    updated_at: float
    decided_at: float | None = None
    verdict: str | None = None
    reason: str | None = None
    change: dict[str, Any] | None = None
    operator: str | None = None
    error: str | None = None

    @classmethod
    def from_sql(cls, row: sqlite3.Row) -> ProposalRow:
        """The row read back; ``DamagedRow`` (with its ``#KEY``) when a column holds what
        bot-bottle never writes there, so that no screen or sync meets it as a TypeError."""
        key = row["key"]
        fault = _column_fault(row)
        if fault is not None:
            raise DamagedRow(_rescued_name(row), *fault, key=key)
        try:
            payload = _load_object(row["payload"], "", "payload") or {}
            change = _load_object(row["change"], "", "change")
        except DamagedRow as exc:
            raise DamagedRow(_rescued_name(row), exc.column, exc.why, key=key) from None
        for column, value in (("payload", payload), ("change", change)):
            why = _payload_fault(value) if value else None
            if why is not None:
                raise DamagedRow(_rescued_name(row), column, why, key=key)
        return cls(
            key=key, bottle_id=row["bottle_id"], id=row["id"], kind=row["kind"],
            payload=payload, justification=row["justification"] or "",
            timeout_s=row["timeout_s"], status=row["status"], created_at=row["created_at"],
            imported_at=row["imported_at"], updated_at=row["updated_at"] or row["imported_at"],
            decided_at=row["decided_at"], verdict=row["verdict"], reason=row["reason"],
            change=change, operator=row["operator"], error=row["error"],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "bottle_id": self.bottle_id, "id": self.id, "kind": self.kind,
            "payload": self.payload, "justification": self.justification, "timeout_s": self.timeout_s,
            "status": self.status, "created_at": self.created_at, "imported_at": self.imported_at,
            "updated_at": self.updated_at, "decided_at": self.decided_at, "verdict": self.verdict,
            "reason": self.reason, "change": self.change, "operator": self.operator, "error": self.error,
        }


@dataclass(frozen=True)
class AuditRow:
    seq: int
    at: float
    operator: str
    action: str
    bottle_id: str | None
    proposal_key: int | None
    reason: str | None
    before: Any
    after: Any
    outcome: str

    @classmethod
    def from_sql(cls, row: sqlite3.Row) -> AuditRow:
        """The row as bot-bottle wrote it; ``DamagedRow`` naming its first column of a type (or
        length) bot-bottle never writes there, as a proposal row's are checked."""
        if fault := _audit_fault(row):
            raise DamagedRow(_audit_name(row), *fault)
        return cls(
            seq=row["seq"], at=row["at"], operator=row["operator"], action=row["action"],
            bottle_id=row["bottle_id"], proposal_key=row["proposal_key"], reason=row["reason"],
            before=_loads(row["before"], _audit_name(row), "before"),
            after=_loads(row["after"], _audit_name(row), "after"), outcome=row["outcome"],
        )


@dataclass(frozen=True)
class EventRow:
    bottle_id: str
    source: str
    offset: int
    ts: str | None
    record: dict[str, Any]
    imported_at: float


# Columns an update may set; anything else is a programming error caught here.
_UPDATABLE = ("status", "decided_at", "verdict", "reason", "change", "operator", "error")
_JSON_COLUMNS = ("change",)


# -- the store ---------------------------------------------------------------------------------


class Store:
    """One open database. Cheap to create; safe to share across threads (one lock in SQLite)."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time,
                 max_events: int = MAX_EVENTS_PER_BOTTLE,
                 max_terminal_events: int = MAX_TERMINAL_EVENTS_PER_BOTTLE) -> None:
        self.path = Path(path)
        self.clock = clock
        self.max_events = max_events
        self.max_terminal_events = max(1, max_terminal_events)
        self.conn = connect(self.path)
        self.conn.row_factory = sqlite3.Row
        try:
            migrate(self.conn, path=self.path)
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            if not_writable(exc):
                # An older file on a read-only file system: not damaged, only not updatable here.
                raise StoreError(f"{self.path}: cannot bring the supervise database up to schema version "
                                 f"{SCHEMA_VERSION}: it cannot be written ({exc})",
                                 hint=writable_hint(self.path)) from None
            raise StoreError(f"{self.path}: not a usable supervise database ({exc})", hint=DAMAGED_HINT) from None
        except BaseException:
            self.conn.close()
            raise

    @classmethod
    def default_path(cls, home_dir: Path | None = None) -> Path:
        """``<bot-bottle home>/supervise.db`` (``~/.bot-bottle`` unless a layout says otherwise)."""
        if home_dir is None:
            from bot_bottle.manifest import Layout

            home_dir = Layout.from_env().home_dir
        return home_dir / DB_NAME

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def version(self) -> int:
        return schema_version(self.conn)

    # -- reading rows ----------------------------------------------------------------------------
    def _select(self, sql: str, args: Iterable[Any] = (), *,
                name: Callable[[Mapping[str, Any]], str]) -> list[sqlite3.Row]:
        """The rows ``sql`` selects; ``DamagedRow`` naming the first (by ``name``) whose text is
        not UTF-8. SQLite stores whatever bytes it is given and Python's reading of them stops
        at the first that do not decode, naming neither the row nor the query: such rows are
        read again with the bytes escaped, only then (no cost while every row is whole)."""
        rows, damaged = self._select_tolerant(sql, args, name=name)
        if damaged:
            raise damaged[0]
        return rows

    def _select_tolerant(self, sql: str, args: Iterable[Any] = (), *,
                         name: Callable[[Mapping[str, Any]], str]) -> tuple[list[sqlite3.Row], list[DamagedRow]]:
        """The rows ``sql`` selects whose text is UTF-8, and a ``DamagedRow`` for each other."""
        args = tuple(args)
        try:
            return self.conn.execute(sql, args).fetchall(), []
        except sqlite3.OperationalError as exc:
            if not _undecodable(exc):
                raise
        whole, damaged = [], []
        for row in self._rescued(sql, args):
            try:
                _check_utf8(row, name)
            except DamagedRow as exc:
                damaged.append(exc)
                continue
            whole.append(row)
        return whole, damaged

    def _rescued(self, sql: str, args: tuple[Any, ...]) -> list[sqlite3.Row]:
        """``sql``'s rows with every byte that is not UTF-8 kept as a lone surrogate
        (``surrogateescape``), read on a connection of their own (a text factory is the
        connection's, and this one may be shared)."""
        conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            conn.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")
            conn.row_factory = sqlite3.Row
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    # -- who is applying what ------------------------------------------------------------------
    def _applying_path(self, key: int) -> Path:
        return self.path.parent / f"{self.path.name}{APPLYING_SUFFIX}" / str(int(key))

    @contextmanager
    def applying(self, key: int) -> Iterator[bool]:
        """Hold proposal ``key``'s applying lock while the body runs (True when it was taken;
        a folder that cannot be written leaves the sync to its clock rule, as without it)."""
        path = self._applying_path(key)
        fd = _take_lock(path)
        try:
            yield fd is not None
        finally:
            if fd is not None:
                with suppress(OSError):
                    path.unlink()
                os.close(fd)

    def apply_alive(self, key: int) -> bool:
        """Whether a process (this one or another on this machine) still holds proposal
        ``key``'s applying lock: it runs, even if it has not stamped the proposal for hours (the
        machine slept, or the process was stopped). False when no process does: it ended (a
        crash leaves its file behind, removed here), or it never took one (an older bot-bottle)."""
        path = self._applying_path(key)
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            except OSError:
                return False
            with suppress(OSError):
                path.unlink()  # left by a process that ended without removing it
            return False
        finally:
            os.close(fd)

    # -- proposals -----------------------------------------------------------------------------
    def add_proposal(self, bottle_id: str, proposal: Mapping[str, Any], *, status: str = "pending",
                     repair_by: str | None = None, repaired: list[tuple[int | None, str]] | None = None) -> bool:
        """Insert a proposal read from a sidecar; False when it is already here (idempotent).

        With ``repair_by`` (who the audit log names), a row of the bottle whose id is damaged
        (not text, or not UTF-8) and that is this proposal (the same kind asked at the same
        time) gets the id back from the sidecar's list rather than the proposal a row beside
        it: the operator never sees one proposal twice. Each repair is added to ``repaired`` as
        (the row's key, what was repaired); when several rows could be it, none is repaired, the
        proposal is not imported, and (None, why) is added."""
        now = self.clock()
        try:
            pid = str(proposal["id"])
            kind = str(proposal["kind"])
        except KeyError as exc:
            raise StoreError(f"proposal from bottle {bottle_id} has no {exc.args[0]!r}") from None
        payload = proposal.get("payload") or {}
        timeout = proposal.get("timeout_s")
        with _immediate(self.conn):
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO proposals (bottle_id, id, kind, payload, justification, timeout_s, status,"
                " created_at, imported_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (bottle_id, pid, kind, _dumps(payload), str(proposal.get("justification") or ""),
                 float(timeout) if timeout is not None else None, status,
                 float(proposal.get("created_at") or now), now, now),
            )
            if cur.rowcount == 1 and repair_by is not None:
                # Only for a proposal new to the store (rare): one look among its bottle's rows.
                said = self._mend_twin(bottle_id, pid, kind, float(proposal.get("created_at") or now),
                                       int(cur.lastrowid or 0), repair_by)
                if said is not None:
                    if repaired is not None:
                        repaired.append(said)
                    return False
        return cur.rowcount == 1

    def _mend_twin(self, bottle_id: str, pid: str, kind: str, created_at: float, new_key: int,
                   operator: str) -> tuple[int | None, str] | None:
        """In the import's transaction, when rows of ``bottle_id`` other than ``new_key`` may be
        proposal ``pid`` with its id damaged: return (the key repaired, what was done), or None
        when there is no such row.

        Such a row's id is not whole text, and either holds ``pid``'s bytes (only their type is
        wrong) or it is the same kind asked at the same moment (``created_at`` has the sidecar's
        milliseconds). One such row gets ``pid`` back, ``new_key`` goes and the repair is
        audited. Several that could each be it: none is guessed at, ``new_key`` goes too (key
        None), and the line says how to end it. A row whose id is whole text is another
        proposal, never touched."""
        found = self.conn.execute(
            "SELECT key, typeof(id) AS type, CAST(id AS BLOB) AS raw FROM proposals WHERE bottle_id = ?"
            " AND key != ? AND (CAST(id AS BLOB) = CAST(? AS BLOB) OR (created_at = ? AND kind = ?))"
            " ORDER BY key LIMIT 8",
            (bottle_id, new_key, pid, created_at, kind),
        ).fetchall()
        twins = [r for r in found if not _whole_text(r["type"], r["raw"])]
        same = [r for r in twins if bytes(r["raw"]) == pid.encode("utf-8", "surrogateescape")]
        if not twins:
            return None
        self.conn.execute("DELETE FROM proposals WHERE key = ?", (new_key,))
        if not same and len(twins) > 1:
            keys = ", ".join(f"#{r['key']}" for r in twins)
            return None, (f"proposal {bottle_id}/{pid} not imported: rows {keys} of that bottle have damaged ids and "
                          "each could be it; drop them (`bot-bottle supervise --drop-damaged #KEY`) and the next "
                          "sync imports it whole")
        twin = (same or twins)[0]
        raw = bytes(twin["raw"])
        was = _type_name(raw if twin["type"] == "blob" else raw.decode("utf-8", "surrogateescape"))
        self.conn.execute("UPDATE proposals SET id = ? WHERE key = ?", (pid, twin["key"]))
        said = (f"proposal {bottle_id}/{pid} (#{twin['key']}) had a damaged id ({was}); repaired from its "
                "sidecar's list, not imported twice")
        self._insert_audit(AuditEntry(operator=operator, action="repair", bottle_id=bottle_id,
                                      proposal_key=twin["key"], reason=said, before={"id": was},
                                      after={"id": pid}))
        return twin["key"], said

    def get(self, key: int) -> ProposalRow:
        rows = self._select("SELECT * FROM proposals WHERE key = ?", (key,), name=_proposal_name)
        if not rows:
            raise StoreError(f"no proposal #{key} in {self.path}")
        return ProposalRow.from_sql(rows[0])

    def find(self, proposal_id: str, bottle_id: str | None = None) -> ProposalRow:
        """A proposal by its sidecar id (``ID``, ``BOTTLE/ID`` or ``#KEY``)."""
        if proposal_id.startswith("#") and proposal_id[1:].isdigit():
            return self.get(int(proposal_id[1:]))
        if bottle_id is None and "/" in proposal_id:
            bottle_id, proposal_id = proposal_id.split("/", 1)
        if bottle_id is None:
            rows = self._select("SELECT * FROM proposals WHERE id = ?", (proposal_id,), name=_proposal_name)
        else:
            rows = self._select("SELECT * FROM proposals WHERE id = ? AND bottle_id = ?", (proposal_id, bottle_id),
                                name=_proposal_name)
        if not rows:
            where = f" of bottle {bottle_id}" if bottle_id else ""
            raise StoreError(f"no proposal {proposal_id!r}{where}",
                             hint="`bot-bottle supervise --once` lists the pending ones")
        if len(rows) > 1:
            bottles = ", ".join(sorted(r["bottle_id"] for r in rows))
            raise StoreError(f"proposal id {proposal_id!r} is in several bottles ({bottles})",
                             hint="name it as BOTTLE/ID")
        return ProposalRow.from_sql(rows[0])

    def resolve(self, typed: str, *, shown: int = MAX_CANDIDATES_SHOWN) -> ProposalRow:
        """The one proposal ``typed`` names, as an operator types it on the command line:
        ``#KEY``, ``ID`` or ``BOTTLE/ID``, or, as with git's or docker's ids, a prefix of the
        ID that only one proposal's ID starts with. A whole ID always wins over longer IDs it
        is a prefix of (``p-1`` is ``p-1``, not ambiguous with ``p-10``).

        ``UnknownProposal`` when none or several match, naming at most ``shown`` of them:
        nothing is picked for the operator.
        """
        if typed.startswith("#") and typed[1:].isdigit():
            found = self._select("SELECT * FROM proposals WHERE key = ?", (int(typed[1:]),), name=_proposal_name)
            if not found:
                raise UnknownProposal(f"no proposal {typed}", hint="`bot-bottle supervise --once` lists the pending ones")
            return ProposalRow.from_sql(found[0])
        bottle_id, pid = typed.split("/", 1) if "/" in typed else (None, typed)
        if not pid:
            raise UnknownProposal(f"no proposal id in {typed!r}", hint="name it as ID, BOTTLE/ID or #KEY")
        in_bottle = "" if bottle_id is None else " AND bottle_id = ?"
        where = [] if bottle_id is None else [bottle_id]
        rows = self._select(f"SELECT * FROM proposals WHERE id = ?{in_bottle} ORDER BY key", (pid, *where),
                            name=_proposal_name)
        whole = bool(rows)
        if not rows:
            # substr, not LIKE: LIKE ignores the case of ASCII letters and reads % and _ as wildcards.
            rows = self._select(f"SELECT * FROM proposals WHERE substr(id, 1, ?) = ?{in_bottle} ORDER BY key LIMIT ?",
                                (len(pid), pid, *where, shown + 1), name=_proposal_name)
        if len(rows) == 1:
            return ProposalRow.from_sql(rows[0])
        where_said = f" of bottle {bottle_id}" if bottle_id else ""
        if not rows:
            raise UnknownProposal(f"no proposal {pid!r}{where_said} (no id is or starts with it)",
                                  hint="`bot-bottle supervise --once` lists the pending ones")
        total = len(rows) if whole else int(self.conn.execute(
            f"SELECT COUNT(*) FROM proposals WHERE substr(id, 1, ?) = ?{in_bottle}", (len(pid), pid, *where)
        ).fetchone()[0])
        names = tuple(f"{r['bottle_id']}/{r['id']}" for r in rows[:shown])
        more = f", and {total - len(names)} more" if total > len(names) else ""
        what = (f"proposal id {pid!r} is in {total} bottles" if whole
                else f"proposal id prefix {pid!r} matches {total} proposals{where_said}")
        raise UnknownProposal(f"{what}: {', '.join(names)}{more}",
                              hint="name it as BOTTLE/ID" if whole else "type more of the id (or BOTTLE/ID)",
                              candidates=names)

    def proposals(self, *, status: str | Iterable[str] | None = None, bottle_id: str | None = None,
                  damaged: list[DamagedRow] | None = None) -> list[ProposalRow]:
        """Proposals, oldest first, optionally of one or more statuses and one bottle.

        A damaged row raises ``DamagedRow``; with a ``damaged`` list, it is added there instead
        and the whole rows are returned (a console or a sync goes on with the others)."""
        sql, args = "SELECT * FROM proposals WHERE 1 = 1", list[Any]()
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            args += statuses
        if bottle_id is not None:
            sql += " AND bottle_id = ?"
            args.append(bottle_id)
        sql += " ORDER BY created_at, key"
        if damaged is None:
            return [ProposalRow.from_sql(r) for r in self._select(sql, args, name=_proposal_name)]
        rows, broken = self._select_tolerant(sql, args, name=_proposal_name)
        damaged.extend(broken)
        out = []
        for r in rows:
            try:
                out.append(ProposalRow.from_sql(r))
            except DamagedRow as exc:
                damaged.append(exc)
        return out

    def drop_damaged(self, key: int, *, operator: str) -> DamagedRow:
        """Delete proposal ``key`` if it is damaged, with an audit row saying what was wrong with
        it; return its damage. ``UnknownProposal`` when there is no such row, ``NotDamaged``
        (nothing changed) when it reads whole: a whole row is decided, never dropped."""
        sql = "SELECT * FROM proposals WHERE key = ?"
        with _immediate(self.conn):
            rows, broken = self._select_tolerant(sql, (key,), name=_proposal_name)
            if not rows and not broken:
                raise UnknownProposal(f"no proposal #{key} in {self.path}",
                                      hint="`bot-bottle supervise --once` names the damaged ones by #KEY")
            damage = broken[0] if broken else None
            if damage is None:
                try:
                    row = ProposalRow.from_sql(rows[0])
                except DamagedRow as exc:
                    damage = exc
                else:
                    raise NotDamaged(f"proposal #{key} ({row.bottle_id}/{row.id}, {row.status}) is not damaged; "
                                     "nothing was dropped", hint="decide it with --approve or --reject")
            bottle = rows[0]["bottle_id"] if rows and isinstance(rows[0]["bottle_id"], str) else None
            self.conn.execute("DELETE FROM proposals WHERE key = ?", (key,))
            self._insert_audit(AuditEntry(operator=operator, action="drop", bottle_id=bottle, proposal_key=key,
                                          reason=f"dropped as damaged: {damage}", outcome="ok"))
        return damage

    def pending(self, bottle_id: str | None = None, *, damaged: list[DamagedRow] | None = None) -> list[ProposalRow]:
        return self.proposals(status="pending", bottle_id=bottle_id, damaged=damaged)

    def update_proposal(self, key: int, *, expect: str, audit: AuditEntry | None = None,
                        unchanged_since: float | None = None, **fields: Any) -> ProposalRow:
        """Set ``fields`` on proposal ``key`` if its status is still ``expect`` (and, with
        ``unchanged_since``, nothing changed or stamped it after that time: see ``heartbeat``);
        audit in the same transaction, so a decision and its audit row exist together or not at all."""
        unknown = set(fields) - set(_UPDATABLE)
        if unknown:
            raise ValueError(f"cannot update proposal columns: {', '.join(sorted(unknown))}")
        cols = dict(fields)
        for name in _JSON_COLUMNS:
            if name in cols:
                cols[name] = _dumps(cols[name])
        cols["updated_at"] = self.clock()
        assignments = ", ".join(f"{name} = ?" for name in cols)
        where, args = "key = ? AND status = ?", [key, expect]
        if unchanged_since is not None:
            where += " AND COALESCE(updated_at, imported_at) <= ?"
            args.append(unchanged_since)
        with _immediate(self.conn):
            cur = self.conn.execute(f"UPDATE proposals SET {assignments} WHERE {where}", (*cols.values(), *args))
            if cur.rowcount != 1:
                found = self._select("SELECT key, bottle_id, id, status FROM proposals WHERE key = ?", (key,),
                                     name=_proposal_name)
                row = found[0] if found else None
                if row is None:
                    raise StoreError(f"no proposal #{key} in {self.path}")
                if row["status"] == expect:
                    raise StaleProposal(f"{row['bottle_id']}/{row['id']} changed while this change was being "
                                        "made; nothing was changed", hint="refresh and look again")
                raise StaleProposal(f"{row['bottle_id']}/{row['id']} became {row['status']} while this change "
                                    f"was being made (it was {expect}); nothing was changed",
                                    hint="someone else decided it first; refresh and look again")
            if audit is not None:
                self._insert_audit(audit)
        return self.get(key)

    def heartbeat(self, key: int, statuses: Iterable[str]) -> bool:
        """Stamp proposal ``key`` as still being worked on (its ``updated_at``) if its status is
        one of ``statuses``; False when it is not (any more). No audit row: nothing changed."""
        wanted = list(statuses)
        with _immediate(self.conn):
            cur = self.conn.execute(
                f"UPDATE proposals SET updated_at = ? WHERE key = ? AND status IN ({','.join('?' * len(wanted))})",
                (self.clock(), key, *wanted),
            )
        return cur.rowcount == 1

    def prune_undecided(self, bottle_id: str, operator: str, *, keep: int | None = None) -> int:
        """Delete a bottle's oldest proposals that ``operator`` (the sync, never a person)
        expired, beyond the newest ``keep`` (``MAX_UNDECIDED_PER_BOTTLE``); return how many."""
        keep = MAX_UNDECIDED_PER_BOTTLE if keep is None else keep
        where = "bottle_id = ? AND status = 'expired' AND operator = ?"
        with _immediate(self.conn):
            cur = self.conn.execute(
                f"DELETE FROM proposals WHERE {where} AND key NOT IN"
                f" (SELECT key FROM proposals WHERE {where} ORDER BY key DESC LIMIT ?)",
                (bottle_id, operator, bottle_id, operator, max(0, keep)),
            )
        return cur.rowcount

    # -- audit ---------------------------------------------------------------------------------
    def audit(self, entry: AuditEntry) -> int:
        with _immediate(self.conn):
            return self._insert_audit(entry)

    def _insert_audit(self, entry: AuditEntry) -> int:
        cur = self.conn.execute(
            "INSERT INTO audit (at, operator, action, bottle_id, proposal_key, reason, before, after, outcome)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (entry.at if entry.at is not None else self.clock(), entry.operator, entry.action, entry.bottle_id,
             entry.proposal_key, entry.reason, _dumps(entry.before), _dumps(entry.after), entry.outcome),
        )
        return int(cur.lastrowid or 0)

    def audit_rows(self, *, proposal_key: int | None = None, bottle_id: str | None = None,
                   damaged: list[DamagedRow] | None = None) -> list[AuditRow]:
        """The audit log (of one proposal or bottle), oldest first. A row that is not what
        bot-bottle writes raises ``DamagedRow``; with a ``damaged`` list it goes there instead
        and the others are returned."""
        sql, args = "SELECT * FROM audit WHERE 1 = 1", list[Any]()
        if proposal_key is not None:
            sql += " AND proposal_key = ?"
            args.append(proposal_key)
        if bottle_id is not None:
            sql += " AND bottle_id = ?"
            args.append(bottle_id)
        rows, unreadable = self._select_tolerant(sql + " ORDER BY seq", args, name=_audit_name)
        if unreadable and damaged is None:
            raise unreadable[0]
        if damaged is not None:
            damaged.extend(unreadable)
        out = []
        for row in rows:
            try:
                out.append(AuditRow.from_sql(row))
            except DamagedRow as exc:
                if damaged is None:
                    raise
                damaged.append(exc)
        return out

    # -- egress events -------------------------------------------------------------------------
    def event_cursor(self, bottle_id: str, source: str) -> int:
        """The byte offset in that sidecar's log up to which events were imported."""
        rows = self._select("SELECT * FROM event_cursors WHERE bottle_id = ? AND source = ?", (bottle_id, source),
                            name=_cursor_name)
        return self._cursor_offset(rows[0]) if rows else 0

    def _cursor_offset(self, row: sqlite3.Row) -> int:
        """A cursor row's offset; ``DamagedRow`` naming the bottle and its log when it is not a
        byte offset (text, a fraction, a negative number: a hand edit or a crash's debris)."""
        value = row["offset"]
        if not _offset(value):
            damaged = DamagedRow(f"event cursor of bottle {row['bottle_id']} (log {row['source']})", "offset",
                                 f"{_type_name(value)} where a byte offset belongs")
            damaged.fate = ("that log is read again from its start (the events already here kept once) and the "
                            "cursor replaced")
            raise damaged
        return value

    def import_events(self, bottle_id: str, source: str, events: Iterable[tuple[int, Mapping[str, Any]]],
                      *, next_offset: int, rescan: bool = False) -> int:
        """Store ``(offset, record)`` pairs read from one sidecar log; return how many were new.

        ``source`` names the sidecar incarnation (a resumed bottle's new sidecar starts its log
        at offset 0 again). The cursor only moves forward, so a slow importer finishing after a
        faster one never rewinds it; a cursor that is not a byte offset (damaged) is replaced.

        ``rescan``: the log is read again from its start (its cursor was damaged). Lines up to
        the newest offset already kept of that log are not imported again: those kept are here
        once already, and older ones the bound dropped stay dropped.
        """
        now = self.clock()
        added = 0
        with _immediate(self.conn):
            if rescan:
                newest = self.conn.execute(
                    "SELECT MAX(offset) FROM egress_events WHERE bottle_id = ? AND source = ?"
                    " AND typeof(offset) = 'integer'",
                    (bottle_id, source)).fetchone()[0]
                if newest is not None:
                    events = [(offset, record) for offset, record in events if int(offset) > newest]
            for offset, record in events:
                cur = self.conn.execute(
                    "INSERT OR IGNORE INTO egress_events (bottle_id, source, offset, ts, record, imported_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (bottle_id, source, int(offset), str(record.get("ts")) if record.get("ts") else None,
                     _dumps(dict(record)), now),
                )
                added += cur.rowcount
            if added:
                # The terminal entries have a bound of their own: a flood of requests must not
                # push the record of a clipboard write out.
                self.conn.execute(
                    "DELETE FROM egress_events WHERE bottle_id = ? AND source != ? AND rowid NOT IN (SELECT rowid"
                    " FROM egress_events WHERE bottle_id = ? AND source != ?"
                    " ORDER BY imported_at DESC, source DESC, offset DESC LIMIT ?)",
                    (bottle_id, TERMINAL_SOURCE, bottle_id, TERMINAL_SOURCE, self.max_events),
                )
            self.conn.execute(
                "INSERT INTO event_cursors (bottle_id, source, offset, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (bottle_id, source) DO UPDATE SET offset = CASE WHEN typeof(offset) = 'integer'"
                " AND offset >= 0 THEN MAX(offset, excluded.offset) ELSE excluded.offset END,"
                " updated_at = excluded.updated_at",
                (bottle_id, source, int(next_offset), now),
            )
        return added

    def event_cursors(self, bottle_id: str, *, damaged: list[DamagedRow] | None = None) -> dict[str, int]:
        """Every sidecar incarnation's import offset for a bottle (read before asking the
        sidecar, so the asking can happen off this connection's thread).

        A cursor whose offset is not a byte offset, or with a column that is not UTF-8, raises
        ``DamagedRow``; with a ``damaged`` list it goes there instead and its log is left out
        (read from its start: see ``import_events``'s ``rescan``), the bottle's other logs read
        on from their cursors."""
        sql = "SELECT * FROM event_cursors WHERE bottle_id = ?"
        rows, unreadable = self._select_tolerant(sql, (bottle_id,), name=_cursor_name)
        if unreadable and damaged is None:
            raise unreadable[0]
        for row in unreadable:
            # The next import of that log replaces the row (same bottle and log); one whose log
            # name is itself damaged names no log of a sidecar, and is left as it is.
            row.fate = ("left as it is (it names no log a sidecar writes)" if row.column == "source" else
                        "that log is read again from its start (the events already here kept once) and the "
                        "cursor replaced")
        if damaged is not None:
            damaged.extend(unreadable)
        out = {}
        for r in rows:
            try:
                out[str(r["source"])] = self._cursor_offset(r)
            except DamagedRow as exc:
                if damaged is None:
                    raise
                damaged.append(exc)
        return out

    def bottles_with_events(self, *, damaged: list[DamagedRow] | None = None) -> list[str]:
        """Every bottle the store holds events, terminal entries or log cursors of. A bottle id
        that is not UTF-8 raises ``DamagedRow``; with a ``damaged`` list it goes there instead."""
        sql = "SELECT bottle_id FROM egress_events UNION SELECT bottle_id FROM event_cursors ORDER BY bottle_id"

        def name(r: Mapping[str, Any]) -> str:
            return f"an event or cursor of bottle {r['bottle_id']}"

        if damaged is None:
            rows = self._select(sql, name=name)
        else:
            rows, broken = self._select_tolerant(sql, name=name)
            damaged.extend(broken)
        return [str(r["bottle_id"]) for r in rows]

    def forget_events(self, bottle_id: str) -> int:
        """Delete a removed bottle's events, terminal entries and log cursors; return how many
        events went. Its proposals and their audit rows stay: they are the record of what was
        decided (and proposals nobody decided are bounded per bottle already)."""
        with _immediate(self.conn):
            gone = self.conn.execute("DELETE FROM egress_events WHERE bottle_id = ?", (bottle_id,)).rowcount
            self.conn.execute("DELETE FROM event_cursors WHERE bottle_id = ?", (bottle_id,))
        return gone

    # -- what the terminal filter held back -----------------------------------------------------
    def record_terminal(self, bottle_id: str, held: Mapping[str, int]) -> bool:
        """Add one entry naming what a bottle's terminal filter held back since the last one
        (kinds and counts, nothing else); False when ``held`` counts nothing.

        Past ``MAX_TERMINAL_EVENTS_PER_BOTTLE`` entries the counts go into the newest entry
        instead, so the table stays bounded however long an agent floods its terminal."""
        counts = merge_counts({}, held)
        if not counts:
            return False
        now = self.clock()
        with _immediate(self.conn):
            row = self.conn.execute(
                # An offset that is not a number (a hand edit) is not the newest entry's.
                "SELECT COUNT(*) AS n, MAX(CASE WHEN typeof(offset) = 'integer' THEN offset END) AS last"
                " FROM egress_events WHERE bottle_id = ? AND source = ?",
                (bottle_id, TERMINAL_SOURCE),
            ).fetchone()
            if row["n"] >= self.max_terminal_events and row["last"] is not None:
                newest = self._select(
                    "SELECT * FROM egress_events WHERE bottle_id = ? AND source = ? AND offset = ?",
                    (bottle_id, TERMINAL_SOURCE, row["last"]), name=_event_name,
                )[0]
                earlier = _load_object(newest["record"], f"terminal entry {row['last']} of bottle {bottle_id}",
                                       "record") or {}
                counts = merge_counts(dict(_counts_of(earlier.get("held"))), counts)
                record = terminal_record(counts, now)
                self.conn.execute(
                    "UPDATE egress_events SET ts = ?, record = ?, imported_at = ?"
                    " WHERE bottle_id = ? AND source = ? AND offset = ?",
                    (record["ts"], _dumps(record), now, bottle_id, TERMINAL_SOURCE, row["last"]),
                )
                return True
            record = terminal_record(counts, now)
            self.conn.execute(
                "INSERT INTO egress_events (bottle_id, source, offset, ts, record, imported_at) VALUES (?, ?, ?, ?, ?, ?)",
                (bottle_id, TERMINAL_SOURCE, (row["last"] if row["last"] is not None else -1) + 1,
                 record["ts"], _dumps(record), now),
            )
        return True

    def terminal_events(self, bottle_id: str, *, damaged: list[DamagedRow] | None = None) -> list[EventRow]:
        """Every terminal entry of a bottle, oldest first (``damaged``: as for ``events``)."""
        return self._event_rows("SELECT * FROM egress_events WHERE bottle_id = ? AND source = ? ORDER BY offset",
                                (bottle_id, TERMINAL_SOURCE), damaged)

    def events(self, bottle_id: str, *, limit: int = 200, damaged: list[DamagedRow] | None = None) -> list[EventRow]:
        """The newest ``limit`` events of a bottle, oldest first.

        A damaged one raises ``DamagedRow``; with a ``damaged`` list it goes there instead and
        the others are returned (one bad line does not hide a bottle's log)."""
        rows = self._event_rows(
            "SELECT * FROM egress_events WHERE bottle_id = ? ORDER BY imported_at DESC, source DESC, offset DESC LIMIT ?",
            (bottle_id, limit), damaged,
        )
        return list(reversed(rows))

    def _event_rows(self, sql: str, args: tuple[Any, ...], damaged: list[DamagedRow] | None) -> list[EventRow]:
        if damaged is None:
            return [_event_row(r) for r in self._select(sql, args, name=_event_name)]
        rows, broken = self._select_tolerant(sql, args, name=_event_name)
        damaged.extend(broken)
        out = []
        for r in rows:
            try:
                out.append(_event_row(r))
            except DamagedRow as exc:
                damaged.append(exc)
        return out

    def events_version(self, bottle_id: str) -> tuple[int, int, float | None, float | None]:
        """What changes whenever a bottle's events may have: SQLite's count of commits by other
        connections (an import, a prune, a terminal entry, a row changed by hand), then how many
        events and terminal entries the store keeps of the bottle and their oldest and newest
        import times. Read from the index alone: a small part of the cost of ``events`` (which
        sorts), so a reader can ask it first and read the events only when it moved."""
        changes = int(self.conn.execute("PRAGMA data_version").fetchone()[0])
        row = self.conn.execute(
            "SELECT COUNT(*), MIN(imported_at), MAX(imported_at) FROM egress_events WHERE bottle_id = ?", (bottle_id,)
        ).fetchone()
        return changes, int(row[0]), row[1], row[2]


def _take_lock(path: Path, tries: int = 3) -> int | None:
    """An open descriptor holding ``path``'s exclusive lock, or None when it cannot be had.

    A checker that found the file unheld may remove it between our open and our lock: the lock
    is kept only on the file that is still at ``path``, else taken again on a new one."""
    for _ in range(tries):
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except OSError:
            pass
        os.close(fd)
    return None


def _event_row(r: sqlite3.Row) -> EventRow:
    name = _event_name(r)
    return EventRow(r["bottle_id"], r["source"], r["offset"], r["ts"], _load_object(r["record"], name, "record") or {},
                    r["imported_at"])


def terminal_recorder(bottle_id: str, path: Path) -> Callable[[Mapping[str, int]], None]:
    """What the terminal relay calls (from its recorder thread) with what it held back of
    ``bottle_id``'s agent: each call opens the database at ``path``, adds the entry and closes
    it again (a call comes once a second at most), so no connection outlives the write."""

    def record(held: Mapping[str, int]) -> None:
        with Store(path) as store:
            store.record_terminal(bottle_id, held)

    return record


def timestamp(now: float) -> str:
    """UTC time with milliseconds, as the egress log's lines carry it (so the two sort together)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def terminal_record(held: Mapping[str, int], now: float) -> dict[str, Any]:
    """A terminal entry's record: when, the kinds held back and how many of each, the total."""
    counts = dict(held)
    return {"ts": timestamp(now), "event": TERMINAL_EVENT, "held": counts, "total": sum(counts.values())}


def merge_counts(into: dict[str, int], more: Mapping[str, int], *, limit: int = MAX_TERMINAL_KINDS) -> dict[str, int]:
    """``into`` with the counts of ``more`` added; at most ``limit`` kinds are named, holds of
    any further kind are counted under ``OTHER_KINDS``. Anything but a text kind with a positive
    count is left out (a record read back from the database is not trusted blindly)."""
    for kind, count in more.items():
        if not isinstance(kind, str) or isinstance(count, bool) or not isinstance(count, int) or count <= 0:
            continue
        kind = kind[:MAX_KIND_CHARS]
        if kind not in into and kind != OTHER_KINDS and len(into) - (OTHER_KINDS in into) >= limit:
            kind = OTHER_KINDS
        into[kind] = into.get(kind, 0) + count
    return into


def _counts_of(value: Any) -> dict[str, int]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class AuditEntry:
    """One audit row to write: who did what to which proposal, why, and the state around it."""

    operator: str
    action: str
    bottle_id: str | None = None
    proposal_key: int | None = None
    reason: str | None = None
    before: Any = None
    after: Any = None
    outcome: str = "ok"  # ok | failed
    at: float | None = None
