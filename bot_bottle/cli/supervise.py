"""``bot-bottle supervise``: the console where the operator decides what blocked agents ask for.

Without options it opens the console (a terminal UI). ``--once`` syncs every running bottle's
sidecar into the store, prints the pending proposals and exits (``--format json`` for scripts).
``--approve ID`` and ``--reject ID --reason TEXT`` decide one proposal from a script or a shell,
named by its id, ``BOTTLE/ID``, ``#KEY`` or a unique prefix of its id.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING


from bot_bottle.cli import common, output
from bot_bottle.errors import UsageError
from bot_bottle.supervise import MAX_REASON_CHARS

if TYPE_CHECKING:
    from bot_bottle.supervise.store import DamagedRow


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "supervise",
        help="the console: approve, modify or reject what blocked agents ask for",
        description=(
            "Open the supervise console: running bottles (those the last sync could not read marked slow or "
            "not read, their pending count as of their last read, as in 3?), the pending proposals of every "
            "bottle (egress, capability, push exception, token use), "
            "the selected proposal's detail (warnings, what approving grants, time left) and the egress/DLP "
            "events of the selected bottle. Keys: a approve, A approve and save the route to the bottle's "
            "manifest (asks first), m modify in $EDITOR, r reject (asks for a reason), enter read the whole "
            "detail (arrows or j/k scroll, escape back), enter on a bottle go to its first pending proposal, "
            "s stop the bottle highlighted in the bottles pane or else the selected proposal's (asks first), "
            "g sync now, tab/shift+tab next/previous pane, up/down or j/k move, ? every key and the last "
            "sync's problems, q quit (decisions being applied finish first). Every decision is recorded in "
            "~/.bot-bottle/supervise.db with who, when and why."
        ),
    )
    p.add_argument("--once", action="store_true",
                   help="sync every running bottle of this home, print the pending proposals and exit "
                        "(exit status 1 when a bottle or the engine could not be reached, a proposal "
                        "was refused as not written by the part it claims, or a row of the database is damaged: "
                        "it is named and left as it is, the others listed)")
    common.add_format(p, help_text="with --once: text (a table) or json (one object: 'pending', 'bottles' and "
                                   "'errors' lists)")
    p.add_argument("--approve", metavar="ID",
                   help="approve one proposal and apply it, then exit (exit status 1 when it was decided "
                        "already or applying it failed; 2, deciding nothing, when ID names no proposal or "
                        f"several). {ID_HELP}")
    p.add_argument("--reject", metavar="ID",
                   help="reject one proposal (with --reason), then exit (exit status 1 when it was decided "
                        "already, or its sidecar could not be told: the rejection is recorded all the same); ID as "
                        "for --approve")
    p.add_argument("--reason", metavar="TEXT",
                   help="with --reject (needed) or --approve: why; the agent is told it, the audit log keeps it. "
                        f"At most {MAX_REASON_CHARS} characters; line breaks and tabs, but no other control "
                        "characters (a reason that breaks this decides nothing and exits 2)")
    p.add_argument("--drop-damaged", metavar="KEY",
                   help="delete one damaged proposal row (#KEY as the console or --once names it; a row that "
                        "is not damaged is refused, exit status 2) and record it in the audit log, then exit. "
                        "Nothing else in the database changes; a pending proposal its sidecar still lists is "
                        "imported again, whole, by the next sync")
    p.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                   help="how often the console syncs with the bottles (default 2, at least 0.5)")
    p.set_defaults(func=run)


ID_HELP = ("ID is a proposal's id as --once prints it, BOTTLE/ID, #KEY (the console's # column), or a unique "
           "prefix: the start of an id that "
           "no other proposal's id starts with, as with git or docker ids (a prefix that several ids start with "
           "decides nothing, exits 2 and names a few of them)")


def run(args: argparse.Namespace) -> int:
    from bot_bottle.supervise import apply
    from bot_bottle.supervise.store import Store
    from bot_bottle.supervise.sync import sync

    from bot_bottle.supervise.console import MIN_INTERVAL_S

    # float() takes "nan", "inf" and 1e-9 too: none is a usable pace (nan and inf break the
    # timer, a tiny one floods the engine with docker exec).
    if not math.isfinite(args.interval) or args.interval < MIN_INTERVAL_S:
        raise UsageError(f"--interval must be a number of seconds, at least {MIN_INTERVAL_S:g} (got {args.interval:g})")
    verdict, typed = _verdict(args)  # a usage error first, before the home is looked at
    layout = common.home_layout(manifests=False)  # its database lives in ~/.bot-bottle
    db = Store.default_path(layout.home_dir)
    if args.drop_damaged is not None:
        return _drop_damaged(db, args.drop_damaged)
    if args.once:
        return _once(db, args.format, layout)
    if args.format != "text":
        raise UsageError("--format applies only with --once")
    if verdict is not None:
        return _decide_one(db, layout, typed, verdict, args.reason)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the console needs a terminal", hint="use `bot-bottle supervise --once` in scripts")
    from bot_bottle import api
    from bot_bottle.supervise.console import SuperviseApp

    with _readable(db):
        # Read once before the screen opens: a damaged file is said here, in one line, not by
        # a console that cannot show a thing. A damaged row is not a damaged file: the console
        # opens, shows the others and names it.
        with Store(db) as st:
            st.pending(damaged=[])

    app = SuperviseApp(
        open_store=lambda: Store(db),
        # The console waits only briefly for each sidecar: a slow one is named on the status
        # line and caught up later, the others and the screen go on.
        sync_fn=lambda st: sync(st, state_root=layout.state_dir, wait_s=CONSOLE_WAIT_S),
        context=apply.Context(layout=layout),
        stop_fn=lambda bottle_id: api.stop(bottle_id, home=layout.home),
        operator=apply.default_operator(),
        interval=args.interval,
    )
    app.run()
    # Quitting while a decision is still applied (an image build takes minutes): the screen is
    # gone, so the terminal says what it waits for and how each ended.
    from bot_bottle.terminal import printable

    app.finish(lambda line: print(printable(line), file=sys.stderr, flush=True))
    return 0


CONSOLE_WAIT_S = 4.0  # how long one console sync waits for any one sidecar


def _verdict(args: argparse.Namespace) -> tuple[str | None, str]:
    """The decision asked for on the command line, (None, "") for none; a combination that
    does not fit is a usage error before anything is read."""
    asked = [(flag, verdict, value) for flag, verdict, value in
             (("--approve", "approved", args.approve), ("--reject", "rejected", args.reject)) if value is not None]
    if len(asked) + bool(args.once) + (args.drop_damaged is not None) > 1:
        raise UsageError("--approve, --reject, --drop-damaged and --once each run alone: one at a time")
    if args.drop_damaged is not None:
        if args.reason is not None:
            raise UsageError("--reason goes with --approve or --reject")
        if args.format != "text":
            raise UsageError("--format applies only with --once")
        return None, ""
    if not asked:
        if args.reason is not None:
            raise UsageError("--reason goes with --approve or --reject")
        return None, ""
    flag, verdict, typed = asked[0]
    if verdict == "rejected" and not (args.reason or "").strip():
        raise UsageError("--reject needs --reason: the agent is told why", hint=f"{flag} {typed} --reason TEXT")
    if args.reason is not None:
        from bot_bottle.supervise.proposals import InvalidDecision, check_reason

        try:
            check_reason(args.reason)
        except InvalidDecision as exc:
            raise UsageError(f"--reason: {exc}; nothing was decided") from None
    return verdict, typed


def _decide_one(db: Path, layout: object, typed: str, verdict: str, reason: str | None) -> int:
    """Decide the one proposal ``typed`` names; a name that fits none or several decides nothing."""
    from bot_bottle.supervise import apply
    from bot_bottle.supervise.store import Store, UnknownProposal
    from bot_bottle.terminal import printable

    with _readable(db), Store(db) as st:
        try:
            row = st.resolve(typed)
        except UnknownProposal as exc:
            raise UsageError(f"{exc}; nothing was decided", hint=exc.hint) from None
        done = apply.decide(st, row, verdict, reason=reason or "", operator=apply.default_operator(),
                            context=apply.Context(layout=layout))
    line = f"{done.bottle_id}/{done.id}: {done.status}" + (f" ({done.error})" if done.error else "")
    if done.status == "failed":
        output.error(line)
        return 1
    if done.status == "rejected" and done.error:
        # Recorded, but its agent never heard it (a stopped bottle, a removed sidecar): a script
        # must not read that as done.
        output.error(line, hint="the rejection is recorded; its agent was not told, and its wait ends unanswered")
        return 1
    # The error quotes what a sidecar answered: its control characters are shown as escapes.
    output.console().print(printable(line), markup=False, highlight=False)
    return 0


def _drop_damaged(db: Path, typed: str) -> int:
    """Delete the damaged proposal row ``typed`` names (``#KEY`` or ``KEY``); a row that is not
    damaged, or no row, is refused (exit 2) and nothing changes."""
    from bot_bottle.supervise import apply
    from bot_bottle.supervise.store import NotDamaged, Store, UnknownProposal
    from bot_bottle.terminal import printable

    key = typed.removeprefix("#")
    if not key.isdigit():
        raise UsageError(f"--drop-damaged takes a proposal's #KEY (as the console or --once names it), "
                         f"not {typed!r}")
    with _readable(db), Store(db) as st:
        try:
            dropped = st.drop_damaged(int(key), operator=apply.default_operator())
        except UnknownProposal as exc:
            raise UsageError(f"{exc}; nothing was dropped", hint=exc.hint) from None
        except NotDamaged as exc:
            raise UsageError(str(exc), hint=exc.hint) from None
    output.console().print(printable(f"dropped #{key} from {db}: {dropped}"), markup=False, highlight=False)
    return 0


@contextlib.contextmanager
def _readable(db: Path) -> Iterator[None]:
    """What goes wrong reading the supervise database at ``db``, as errors that say so: a damaged
    page or row is the file's fault, not a bug in bot-bottle."""
    from bot_bottle.supervise import view
    from bot_bottle.supervise.store import DAMAGED_HINT, DamagedRow, StoreError, not_writable, writable_hint

    try:
        yield
    except (sqlite3.DatabaseError, DamagedRow) as exc:
        hint = DAMAGED_HINT if view.is_damage(exc) else writable_hint(db) if not_writable(exc) else None
        raise StoreError(view.damaged_store(db, exc), hint=hint) from None


def _once(db, fmt: str, layout) -> int:  # type: ignore[no-untyped-def]
    from bot_bottle.supervise import view
    from bot_bottle.supervise.store import DamagedRow, Store
    from bot_bottle.supervise.sync import sync

    with _readable(db), Store(db) as st:
        report = sync(st, state_root=layout.state_dir)
        labels = {b.id: b.label for b in report.bottles}
        now = time.time()
        damaged: list[DamagedRow] = []
        rows = st.pending(damaged=damaged)
        pending = [view.proposal_record(r, label=labels.get(r.bottle_id), now=now) for r in rows]
    # Each damaged row once, whether the sync or the listing met it first.
    report.left_damaged(*damaged)
    left = [f"{view.damaged_store(db, row)}; {_fate(row)}, the others are listed" for row in report.damaged]
    # A sync that could not reach the engine or a bottle printed an incomplete list: a script must
    # not read it as "nothing pending". Nor must a damaged row go unseen.
    failed = 1 if report.errors or left else 0
    if fmt == "json":
        output.print_json({"pending": pending, "bottles": [b.to_dict() for b in report.bottles],
                           "errors": [*report.errors, *left]})
        for line in report.repaired:
            output.warn(f"{db}: {line}")
        _say_damaged(left)
        return failed
    for error in report.errors:
        output.warn(error)
    for line in report.repaired:
        output.warn(f"{db}: {line}")
    _say_damaged(left)
    con = output.console()
    if not pending:
        # With a sync problem the count of bottles is what could be listed, not what runs.
        con.print(f"no pending proposals ({len(report.bottles)} running bottle(s))" if not failed else
                  f"no pending proposals known ({len(report.bottles)} running bottle(s) listed; the problems above "
                  "may hide some)")
        return failed
    table = output.table(f"Pending proposals ({len(pending)})")
    for col in ("bottle", "id", "kind", "request", "justification", "age"):
        table.add_column(col, overflow="fold")
    for p in pending:
        bottle = p["bottle"] + (f" ({p['label']})" if p["label"] else "")
        # Warnings first, as the console shows them: what approving grants beyond its look.
        request = "".join(f"! {w}\n" for w in p["warnings"]) + p["summary"]
        # Every cell as text, never markup, its control and bidi characters escaped: an id is
        # whatever the store holds (an older sidecar's, a row changed by hand).
        table.add_row(view.plain(bottle), view.plain(p["id"]), view.plain(p["kind"]), view.plain(request),
                      view.plain(p["justification"]), view.duration(p["age_s"]))
    output.show(table)
    stale = sorted({p["bottle"] for p in pending} & set(report.unread))
    if stale:
        # Listed from the store, as imported by the last sync that read them.
        output.warn(f"the proposals of {', '.join(stale)} are as last read: the sync could not read "
                    f"{'their sidecars' if len(stale) > 1 else 'its sidecar'} now (more may be waiting, "
                    "some may be gone)")
    return failed


def _fate(row: DamagedRow) -> str:
    """What became of a damaged row: a proposal is left as it is, and can be dropped by its key."""
    if row.fate != "left as it is":
        return row.fate
    drop = f"; `bot-bottle supervise --drop-damaged #{row.key}` drops it" if row.key is not None else ""
    return f"left as it is (nothing was decided about it{drop})"


def _say_damaged(lines: list[str]) -> None:
    """The damaged rows --once left as they are, on stderr, the way out said once after them."""
    from bot_bottle.supervise.store import DAMAGED_HINT

    for i, line in enumerate(lines):
        output.error(line, hint=DAMAGED_HINT if i == len(lines) - 1 else None)
