"""``bot-bottle supervise``: the console where the operator decides what blocked agents ask for.

Without options it opens the console (a terminal UI). ``--once`` syncs every running bottle's
sidecar into the store, prints the pending proposals and exits (``--format json`` for scripts).
"""

from __future__ import annotations

import argparse
import sys
import time


from bot_bottle.cli import common, output
from bot_bottle.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "supervise",
        help="the console: approve, modify or reject what blocked agents ask for",
        description=(
            "Open the supervise console: running bottles, the pending proposals of every bottle (egress, "
            "capability, push exception, token use) and the egress/DLP events of the selected bottle. Keys: "
            "a approve, A approve and save the route to the bottle's manifest, m modify in $EDITOR, r reject "
            "(asks for a reason), s stop the selected bottle, g sync now, tab next pane, q quit. Every decision "
            "is recorded in ~/.bot-bottle/supervise.db with who, when and why."
        ),
    )
    p.add_argument("--once", action="store_true",
                   help="sync every running bottle, print the pending proposals and exit "
                        "(exit status 1 when a bottle or the engine could not be reached)")
    common.add_format(p, help_text="with --once: text (a table) or json (one object with a 'pending' list)")
    p.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                   help="how often the console syncs with the bottles (default 2)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot_bottle.supervise import apply
    from bot_bottle.supervise.store import Store
    from bot_bottle.supervise.sync import sync

    layout = common.layout()
    db = Store.default_path(layout.home_dir)
    if args.once:
        return _once(db, args.format, layout)
    if args.format != "text":
        raise UsageError("--format applies only with --once")
    if args.interval <= 0:
        raise UsageError("--interval must be a positive number of seconds")
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the console needs a terminal", hint="use `bot-bottle supervise --once` in scripts")
    from bot_bottle import api
    from bot_bottle.supervise.console import SuperviseApp

    app = SuperviseApp(
        open_store=lambda: Store(db),
        sync_fn=lambda st: sync(st, state_root=layout.state_dir),
        context=apply.Context(layout=layout),
        stop_fn=lambda bottle_id: api.stop(bottle_id, home=layout.home),
        operator=apply.default_operator(),
        interval=args.interval,
    )
    app.run()
    return 0


def _once(db, fmt: str, layout) -> int:  # type: ignore[no-untyped-def]
    from bot_bottle.supervise import view
    from bot_bottle.supervise.store import Store
    from bot_bottle.supervise.sync import sync

    with Store(db) as st:
        report = sync(st, state_root=layout.state_dir)
        labels = {b.id: b.label for b in report.bottles}
        now = time.time()
        pending = [view.proposal_record(r, label=labels.get(r.bottle_id), now=now) for r in st.pending()]
    # A sync that could not reach the engine or a bottle printed an incomplete list: a script must
    # not read it as "nothing pending".
    failed = 1 if report.errors else 0
    if fmt == "json":
        output.print_json({"pending": pending, "bottles": [b.to_dict() for b in report.bottles],
                           "errors": report.errors})
        return failed
    for error in report.errors:
        output.warn(error)
    con = output.console()
    if not pending:
        con.print(f"no pending proposals ({len(report.bottles)} running bottle(s))")
        return failed
    table = output.table(f"Pending proposals ({len(pending)})")
    for col in ("bottle", "id", "kind", "request", "justification", "age"):
        table.add_column(col, overflow="fold")
    for p in pending:
        bottle = p["bottle"] + (f" ({p['label']})" if p["label"] else "")
        table.add_row(view.plain(bottle), p["id"], view.plain(p["kind"]), view.plain(p["summary"]),
                      view.plain(p["justification"]), view.duration(p["age_s"]))
    output.show(table)
    return failed
