"""``bot-bottle logs ID``: the egress decisions of a bottle, live or from its saved state.

A running bottle's proxy writes one JSON line per decision to ``egress.jsonl`` inside its
sidecar; this reads that file (``--follow`` keeps reading until Ctrl-C or the bottle ends). A
bottle that no longer runs is read from ``~/.bot-bottle/state/<ID>/egress.jsonl``, kept when the
bottle was preserved. Lines hold no header values, query strings or secrets (the proxy never
writes them), so printing them is safe.

Between them, in time order, the terminal sequences the host's filter held back of the agent's
output (a clipboard write, a tmux passthrough: signs of prompt injection), read from the
supervise database, where ``bot-bottle start`` records them as they happen. They name kinds and
counts only, never a held byte; in JSON they are the lines with ``"event": "terminal"`` (an egress
decision's is ``"egress"``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from rich.text import Text

from bot_bottle import interrupts, scratch
from bot_bottle.backend.docker import egress_log, engine
from bot_bottle.backend.docker.names import BottleNames
from bot_bottle.cli import common, output
from bot_bottle.errors import BotBottleError, UsageError
from bot_bottle.backend.docker.sidecar_watch import why_offline
from bot_bottle.sidecar.egress.logfile import part_marker
from bot_bottle.state import ID_RE
from bot_bottle.supervise.store import DB_NAME, TERMINAL_EVENT, Store
from bot_bottle.terminal import one_line

SIDECAR_LOG = egress_log.SIDECAR_EGRESS_LOG
SAVED_LOG = "egress.jsonl"

_STYLES = {"allow": "green", "deny": "red"}
# How often ``--follow`` looks for new terminal entries (they are recorded about once a second).
TERMINAL_POLL_S = 1.0
# How often it looks whether the log's history has been replayed (see ``FollowMerge``).
TICK_S = 0.1


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "logs",
        help="show a bottle's egress decisions (allowed and refused requests) and the terminal sequences held back",
        description=(
            "Show the egress proxy's decisions for bottle ID: one line per request or tunnel, with the "
            "rule that decided. Reads the running bottle's log, or the log saved with a preserved bottle. "
            "Between them, HELD lines name the terminal sequences the host held back of the agent's output "
            "(a clipboard write, a tmux passthrough), by kind and count."
        ),
    )
    p.add_argument("id", metavar="ID")
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing new decisions until Ctrl-C or the bottle ends")
    common.add_format(p, help_text="text (one coloured line per decision) or json (one JSON object per line)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not ID_RE.match(args.id):
        # A slip at the prompt, as a mistyped agent name is: a usage error.
        raise UsageError(f"'{args.id}' is not a bottle id", hint="`bot-bottle list --running` shows them")
    container = BottleNames(args.id, "").sidecar_container
    database = common.layout().home_dir / DB_NAME
    state = _container_state(container)
    if state == "running":
        if args.follow:
            return _follow(container, args.format, TerminalEntries(database, args.id))
        _print_all(_read_running_log(container, args.id).splitlines(), args.format,
                   TerminalEntries(database, args.id).new())
        return 0
    if state == "stopped":
        # The sidecar stopped (fail closed when a daemon dies; the agent may run on, offline):
        # say why, and show its log, which stays in the stopped container until teardown.
        output.warn(f"the sidecar of bottle {args.id} stopped ({why_offline(container)}); showing the log it left")
        _print_all(_read_stopped_log(container).splitlines(), args.format, TerminalEntries(database, args.id).new())
        return 0
    saved = saved_log_path(common.layout().state_dir, args.id)
    terminal = TerminalEntries(database, args.id).new()
    if saved.is_file():
        if args.follow:
            output.warn(f"bottle {args.id} is not running; showing its saved log")
        _print_all(saved.read_text(encoding="utf-8", errors="replace").splitlines(), args.format, terminal)
        return 0
    if terminal:
        # The bottle is gone with its egress log, but the host recorded what its terminal filter
        # held back: that is worth seeing (a clipboard write is a sign of prompt injection).
        output.warn(f"bottle {args.id} is not running and has no saved egress log; showing the terminal "
                    "sequences held back of its agent")
        _print_all([], args.format, terminal, quiet=True)
        return 0
    if state == "unknown":
        raise BotBottleError(
            f"no Docker engine answers, so bottle {args.id}'s live log cannot be read, and it has no saved egress log",
            hint=engine.NO_ENGINE_HINT,
        )
    raise BotBottleError(
        f"bottle {args.id} is not running and has no saved egress log",
        hint="`bot-bottle list --running` shows running and preserved bottles; a log is kept only when a bottle is preserved",
    )


def saved_log_path(state_dir: Path, bottle_id: str) -> Path:
    """Where a preserved bottle's egress log is kept (teardown copies it there)."""
    return state_dir / bottle_id / SAVED_LOG


def _container_state(container: str) -> str | None:
    """"running", "stopped", "unknown" (no engine answers), or None when there is no such container."""
    try:
        result = engine.run(["inspect", "-f", "{{.State.Running}}", container], timeout=30, check=False)
    except engine.DockerError:
        return "unknown"  # no docker here: only a saved log can be shown
    if result.returncode != 0:
        return "unknown" if engine.no_engine_error(result.stderr) is not None else None
    return "running" if result.stdout.strip() == "true" else "stopped"


def _read_running_log(container: str, bottle_id: str) -> str:
    """The running sidecar's log: its first and earlier parts first (the proxy keeps up to three)."""
    try:
        result = engine.run(["exec", container, "sh", "-c", f"cat {SIDECAR_LOG}.first {SIDECAR_LOG}.1 2>/dev/null; cat {SIDECAR_LOG}"],
                            timeout=60, check=False)
    except UnicodeDecodeError:
        # A byte that is not UTF-8 (a damaged log): read it as bytes instead, shown as U+FFFD.
        return _read_stopped_log(container)
    if result.returncode != 0 and "No such file" not in result.stderr:
        raise BotBottleError(f"cannot read the egress log of bottle {bottle_id}: {result.stderr.strip()}")
    return result.stdout


def _read_stopped_log(container: str) -> str:
    """The egress log out of a container, stopped or running (``docker cp`` works on either), read as
    bytes: one that is not UTF-8 is shown with U+FFFD."""
    with scratch.private_dir() as tmp:
        target = Path(tmp) / SAVED_LOG
        return target.read_text(encoding="utf-8", errors="replace") if egress_log.copy_out(container, target) else ""


class TerminalEntries:
    """A bottle's terminal entries in the supervise database, each handed out once (``new``).

    An entry is handed out again when it grew (past the store's bound, later holds are added to
    the newest entry). A database that is missing is read as empty (it is not created here); one
    that cannot be read is said once, and the egress decisions are shown all the same."""

    def __init__(self, path: Path, bottle_id: str) -> None:
        self.path = path
        self.bottle_id = bottle_id
        self._seen: dict[int, Any] = {}
        self._warned = False

    def new(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        damaged: list[Any] = []  # entries left out, each a DamagedRow: the others are shown
        try:
            with Store(self.path) as store:
                rows = store.terminal_events(self.bottle_id, damaged=damaged)
        except Exception as exc:  # noqa: BLE001 - the decisions are still worth showing
            if not self._warned:
                self._warned = True
                output.warn(f"the terminal sequences held back of bottle {self.bottle_id} cannot be read: {exc}")
            return []
        if damaged and not self._warned:
            self._warned = True
            output.warn(f"{len(damaged)} terminal entr{'y' if len(damaged) == 1 else 'ies'} of bottle "
                        f"{self.bottle_id} in {self.path} cannot be read and {'is' if len(damaged) == 1 else 'are'} "
                        f"not shown: {damaged[0]}")
        out = []
        for row in rows:
            if not isinstance(row.record, dict):
                continue
            mark = (row.record.get("ts"), row.record.get("total"))
            if self._seen.get(row.offset) != mark:
                self._seen[row.offset] = mark
                out.append(row.record)
        return out


def _follow(container: str, fmt: str, terminal: TerminalEntries | None = None) -> int:
    binary = engine.docker_binary()
    if binary is None:
        raise BotBottleError("the docker CLI is not installed")
    merge = FollowMerge(fmt)
    stop = threading.Event()
    if terminal is not None:
        threading.Thread(target=_follow_terminal, args=(terminal, merge, stop), daemon=True,
                         name="logs-terminal").start()
    # -F follows the file by name and waits for it; the exec ends when the container does.
    proc = subprocess.Popen(
        [binary, "exec", container, "tail", "-n", "+1", "-F", SIDECAR_LOG],
        # A byte that is not UTF-8 (a damaged log) is shown as U+FFFD, as the saved log's reader
        # does, rather than ending the follow with a decoding error.
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, encoding="utf-8", errors="replace", bufsize=1,
    )
    try:
        assert proc.stdout is not None
        for record in parse_lines(proc.stdout):
            merge.decision(record)
    except KeyboardInterrupt:
        interrupts.taken()  # Ctrl-C is how a follow ends
    finally:
        stop.set()
        merge.close()
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


class FollowMerge:
    """A follow's two streams printed in time order, from two threads.

    ``tail -n +1`` first replays the log's history, then prints decisions as they come; the
    terminal entries are read from the database, the ones recorded before the follow began among
    them. While the history is replayed, the entries wait and go out between the decisions by
    their time (as ``logs`` without ``--follow`` prints them). The history is over once the log
    has been quiet for ``REPLAY_QUIET_S``, or said nothing at all for ``REPLAY_FIRST_S`` (an
    empty log, a slow engine); from then on each line is printed as it arrives."""

    REPLAY_QUIET_S = 0.5
    REPLAY_FIRST_S = 3.0

    def __init__(self, fmt: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.fmt = fmt
        self.clock = clock
        self._lock = threading.Lock()
        self._waiting: list[dict[str, Any]] = []
        self._replaying = True
        self._began = clock()
        self._last_line: float | None = None
        self._closed = False

    def decision(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._last_line = self.clock()
            if self._replaying:
                self._waiting = _print_earlier(self._waiting, _word(record.get("ts")), self.fmt)
            _print_one(record, self.fmt)

    def terminal(self, entries: list[dict[str, Any]]) -> None:
        with self._lock:
            if self._closed:
                return
            if self._replaying:
                self._waiting = sorted(self._waiting + entries, key=lambda e: _word(e.get("ts")))
                return
            for entry in entries:
                _print_one(entry, self.fmt)

    def tick(self) -> None:
        """End the replay when the log has been quiet long enough (called every so often)."""
        with self._lock:
            if not self._replaying:
                return
            now = self.clock()
            if self._last_line is None:
                over = now - self._began >= self.REPLAY_FIRST_S
            else:
                over = now - self._last_line >= self.REPLAY_QUIET_S
            if over:
                self._end_replay()

    def close(self) -> None:
        """The follow ends: what still waits is printed (it is newer than every decision shown)."""
        with self._lock:
            self._closed = True
            self._end_replay()

    def _end_replay(self) -> None:
        self._replaying = False
        self._waiting = _print_earlier(self._waiting, None, self.fmt)


def _follow_terminal(terminal: TerminalEntries, merge: FollowMerge, stop: threading.Event) -> None:
    """Hand new terminal entries to ``merge`` every ``TERMINAL_POLL_S`` until ``stop``; tick it
    more often, so the end of the log's history is seen soon."""
    next_read = 0.0
    while not stop.is_set():
        now = time.monotonic()
        if now >= next_read:
            entries = terminal.new()
            if stop.is_set():
                return
            merge.terminal(entries)
            next_read = now + TERMINAL_POLL_S
        merge.tick()
        stop.wait(TICK_S)


def parse_lines(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Decision records from log lines; anything that is not one (a torn last line) is skipped."""
    for line in lines:
        text = line.strip()
        if not text.startswith("{"):
            continue
        try:
            # NaN and Infinity are not JSON: read as null, so `--format json` prints valid JSON.
            record = json.loads(text, parse_constant=lambda _: None)
        except (ValueError, RecursionError):
            # Not only torn JSON: an integer too long to convert (ValueError) or nesting too
            # deep to parse (RecursionError) is one bad line too, never the end of the listing.
            continue
        if isinstance(record, dict) and "decision" in record:
            yield record


def _print_all(lines: Iterable[str], fmt: str, terminal: list[dict[str, Any]] | None = None, *,
               quiet: bool = False) -> None:
    """The decisions in ``lines``, with the ``terminal`` entries (oldest first) between them in
    time order; ``quiet``: no word when there are no decisions (there is no log to have any)."""
    count = 0
    read = 0  # where the next line begins in the whole log, as if nothing had been dropped
    waiting = list(terminal or [])
    for line in lines:
        marker = _part_marker(line.strip())
        if marker is not None:
            # A part after the first: where the proxy dropped decisions (a flood), say so.
            if marker["starts_at"] > read and fmt == "text":
                output.console().print(Text(
                    f"... {_amount(marker['starts_at'] - read)} of decisions dropped here: the log "
                    "keeps its first and its newest parts", style="yellow"))
            read = marker["starts_at"]
        read += len(line.encode("utf-8", "replace")) + 1
        for record in parse_lines([line]):
            waiting = _print_earlier(waiting, _word(record.get("ts")), fmt)
            _print_one(record, fmt)
            count += 1
    _print_earlier(waiting, None, fmt)
    if count == 0 and fmt == "text" and not quiet:
        output.err_console().print("no egress decisions logged yet (egress.log 0 logs none, 1 only refusals)")


def _print_earlier(entries: list[dict[str, Any]], ts: str | None, fmt: str) -> list[dict[str, Any]]:
    """Print the entries recorded before ``ts`` (all of them for None); return the rest.
    A decision without a time does not move the entries (they wait for the next one that has)."""
    if ts == "":
        return entries
    shown = 0
    for entry in entries:
        if ts is not None and _word(entry.get("ts")) > ts:
            break
        _print_one(entry, fmt)
        shown += 1
    return entries[shown:]


def _part_marker(line: str) -> dict[str, Any] | None:
    """``part_marker``, with a line nested too deep to parse read as no marker (as a torn one is)."""
    try:
        return part_marker(line)
    except RecursionError:
        return None


def _amount(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB" if size >= 1024 * 1024 else f"{size} bytes"


def _print_one(record: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(record, separators=(",", ":")), flush=True)
    else:
        output.console().print(format_text(record))


def format_text(record: dict[str, Any]) -> Text:
    """One line: time, decision, method, target, status, duration, and why (for a terminal
    entry: time and what was held back, see ``format_terminal``).

    A field of the wrong type (a hand-edited or damaged saved log) is left out, or shown as
    "?" where the line needs it; the rest of the line is still shown. Every field is the agent's
    to shape (a host, a path, a method it sent; a reason or an error quoting them): control
    characters, line breaks and tabs are shown as escapes, so one decision is one line and no
    field can draw a line or a column that passes for another decision."""
    if record.get("event") == TERMINAL_EVENT:
        return format_terminal(record)
    decision = _word(record.get("decision")) or "?"
    style = "yellow" if record.get("dlp_action") and decision == "allow" else _STYLES.get(decision, "")
    stamp = _word(record.get("ts"))
    time_part = stamp[11:23] if len(stamp) >= 23 else stamp
    target = f"{_spelled(record.get('host')) or '?'}:{_word(record.get('port')) or '?'}"
    if not record.get("connect"):
        target += _spelled(record.get("path"))
    line = Text()
    line.append(one_line(f"{time_part} "), style="dim")
    line.append(one_line(f"{decision.upper():<5} "), style=f"bold {style}".strip())
    line.append(one_line(f"{_word(record.get('method')) or '?':<7} "))
    line.append(one_line(target), style=style)
    if status := _word(record.get("status")):
        line.append(one_line(f" {status}"))
    duration = record.get("duration_ms")
    if isinstance(duration, (int, float)) and not isinstance(duration, bool):
        line.append(f" {duration:.1f}ms", style="dim")
    why = [f"rule {_word(record.get('rule')) or None}"]
    if route := _word(record.get("route")):
        why.append(route)
    if names := _words(record.get("detectors")):
        why.append("detectors " + ",".join(names))
    if dlp_action := _word(record.get("dlp_action")):
        why.append(f"dlp {dlp_action}")
    line.append(one_line("  " + "; ".join(why)), style="dim")
    # The reason and the error quote the host or path asked for: spelled as they are.
    if decision != "allow" and (reason := _spelled(record.get("reason"))):
        line.append(one_line(f"  {reason}"), style=style)
    if error := _spelled(record.get("error")):
        line.append(one_line(f"  error: {error}"), style="red")
    return line


def format_terminal(record: dict[str, Any]) -> Text:
    """A terminal entry in one line: time, HELD, and each kind held back with its count."""
    stamp = _word(record.get("ts"))
    held = record.get("held")
    kinds = [f"{_word(kind)} x{_word(count) or '?'}" for kind, count in held.items()] if isinstance(held, dict) else []
    total = record.get("total")
    line = Text()
    line.append(one_line(f"{stamp[11:23] if len(stamp) >= 23 else stamp} "), style="dim")
    line.append("HELD  ", style="bold magenta")
    line.append("terminal: ", style="magenta")
    line.append(one_line(", ".join(kinds) or "?"), style="magenta")
    if isinstance(total, int) and not isinstance(total, bool):
        line.append(one_line(f"  ({total} sequence{'' if total == 1 else 's'} the agent printed, held back"
                             " by the host's terminal filter)"), style="dim")
    return line


def _word(value: Any) -> str:
    """A log field as text when it is a string or a number (what the proxy writes); "" for
    anything else (missing, null, a list or a mapping where a word belongs)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def _spelled(value: Any) -> str:
    """A request's host or path (or a reason or error quoting them) as ``_word``, each character
    beyond ASCII as an escape: a lookalike letter never reads as the one it imitates
    (``\\u0430pi.github.com``), and a right-to-left one never makes a bidi-aware terminal reorder
    the status and time after it.
    U+FFFD stays: it is what a byte that is not UTF-8 was read as, and imitates nothing."""
    word = _word(value)
    if word.isascii():
        return word
    return "".join(char if char.isascii() or char == "\ufffd" else
                   char.encode("ascii", "backslashreplace").decode("ascii") for char in word)


def _words(value: Any) -> list[str]:
    """A list field's usable entries (one word alone counts as a list of it)."""
    items = value if isinstance(value, list) else [value]
    return [word for word in map(_word, items) if word]
