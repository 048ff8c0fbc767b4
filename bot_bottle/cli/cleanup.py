"""``bot-bottle cleanup``: remove containers, networks, volumes, snapshots and state no live bottle owns."""

from __future__ import annotations

import argparse
import shutil

from bot_bottle.backend.docker import cleanup as docker_cleanup
from bot_bottle import scratch
from bot_bottle.backend import registry
from bot_bottle.backend.docker import engine, orphan_work
from bot_bottle.cli import common, output
from bot_bottle.cli.render import _cell as cell  # names and reasons as written: never Rich markup


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cleanup",
        help="remove orphaned containers, networks, volumes, snapshots and state folders (-n: preview)",
        description=(
            "Find every bot-bottle container, network, volume, snapshot image, state folder and private "
            "temporary folder of this home's bottles (their state folder is under this HOME) that no "
            "live bottle owns (its launching process is gone) and remove it. A bottle whose agent had "
            "started and whose bot-bottle process is gone (killed, or the machine restarted) has its "
            "work saved first, as its own teardown would have: a snapshot, and the bottle preserved for "
            "`resume`. An agent container kept because its bottle's snapshot failed gets a new snapshot, "
            "and goes once it is taken. Preserved bottles and their snapshots are kept (--all removes "
            "them, and saves nothing). Everything of bottles started from another home, and of bottles whose owner runs in another PID namespace or on another host (it "
            "cannot be checked from here), is skipped, even with --all. The output says what was kept "
            "or skipped and why. Idempotent."
        ),
    )
    p.add_argument("-n", "--dry-run", action="store_true", help="show what would be removed; remove nothing")
    p.add_argument("--all", action="store_true", help="also remove preserved bottles and their snapshots")
    p.add_argument(
        "--images", action="store_true",
        help="also remove bot-bottle's images that this version no longer uses (older builds; "
             "never one a container or a saved bottle uses); they are rebuilt when needed",
    )
    common.add_format(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    lay = common.layout()
    available = engine.is_available()
    saving: list[str] = []
    if not available:
        from bot_bottle import state

        # Without an engine only state folders can be judged. Preserved bottles are kept (and
        # listed as kept) unless --all, as with an engine.
        output.warn("no Docker engine answers; only state folders were checked")
        inv = docker_cleanup.Inventory()
        docker_cleanup.judge_states(inv, state.all_states(lay.state_dir))
        if not args.all:
            orphan_work.keep_unchecked(inv, lay.state_dir)
    else:
        inv = registry.inventory(lay.state_dir)
        # An orphan's agent work is saved (a snapshot, the bottle preserved) before its
        # containers go; --all removes everything, as asked.
        saving = [] if args.all else orphan_work.to_save(inv, lay.state_dir)
    save_failures: dict[str, str] = {}
    if saving and args.dry_run:
        orphan_work.preview(inv, saving)
    elif saving:
        outcomes = {bottle_id: orphan_work.save(bottle_id, lay.state_dir) for bottle_id in saving}
        saving = [bottle_id for bottle_id, (saved, _) in outcomes.items() if saved]
        save_failures = {bottle_id: why for bottle_id, (_, why) in outcomes.items() if why is not None}
        inv = registry.inventory(lay.state_dir)  # the saved bottles are preserved now
        orphan_work.leave_busy(inv, [bid for bid, (saved, why) in outcomes.items() if not saved and why is None])
    # Private temporary folders a killed launch left (they may hold a bottle's secrets).
    inv.orphans.extend(docker_cleanup.Resource("temp", str(path), str(path), None) for path in scratch.orphans())
    if args.all:
        inv.orphans.extend(r for r, _ in inv.kept)
        inv.kept = []
    if args.images:
        if not available:
            output.error("no Docker engine answers; images cannot be checked", hint=engine.NO_ENGINE_HINT)
            return 1
        stale, kept = docker_cleanup.stale_images(lay.state_dir, _current_images())
        inv.orphans.extend(stale)
        inv.kept.extend(kept)
    failures = [f"bottle {bid}: its work could not be saved ({why}); its agent container is kept with it"
                for bid, why in save_failures.items()]
    if not args.dry_run:
        failures += registry.remove([r for r in inv.orphans if r.kind != "temp"])
        for r in inv.orphans:
            if r.kind == "temp":
                shutil.rmtree(r.ref, onerror=lambda _f, path, exc: failures.append(f"temp {path}: {exc[1]}"))
    if args.format == "json":
        output.print_json(
            {
                "dry_run": args.dry_run,
                "removed" if not args.dry_run else "would_remove": [
                    {"kind": r.kind, "name": r.name, "bottle_id": r.bottle_id} for r in inv.orphans
                ],
                "kept": [{"kind": r.kind, "name": r.name, "bottle_id": r.bottle_id, "why": why}
                         for r, why in inv.kept + inv.skipped]
                + [{"kind": r.kind, "name": r.name, "bottle_id": r.bottle_id, "why": "live bottle"} for r in inv.live],
                "saved" if not args.dry_run else "would_save": [{"bottle_id": bid} for bid in saving],
                "failures": failures,
            }
        )
        return 1 if failures else 0
    con = output.console()
    for bottle_id in saving:
        verb = "would save" if args.dry_run else "saved"
        con.print(cell(f"{verb} the work of bottle {bottle_id} in a snapshot: `bot-bottle resume {bottle_id}` "
                       "continues it", style="green"))
    if not inv.orphans:
        con.print("nothing to clean up")
    else:
        table = output.table("would remove" if args.dry_run else "removed")
        table.add_column("kind", overflow="fold")
        table.add_column("name", overflow="fold")
        table.add_column("bottle", overflow="fold")
        for r in inv.orphans:
            table.add_row(cell(r.kind), cell(r.name), cell(r.bottle_id or "-"))
        output.show(table)
    for verb, entries in (("kept", inv.kept), ("skipped", inv.skipped)):
        for why, resources in _by_reason(entries):
            listed = ", ".join(f"{r.kind} {r.name}" for r in resources)
            con.print(cell(f"{verb} {listed}: {why}", style="dim"))
    for failure in failures:
        output.error(failure)
    return 1 if failures else 0


def _by_reason(kept: list[tuple[docker_cleanup.Resource, str]]) -> list[tuple[str, list[docker_cleanup.Resource]]]:
    """What was kept or skipped, one line per reason (first seen first): on an engine shared
    with other homes a bottle's container, sidecar, network and volume share one."""
    grouped: dict[str, list[docker_cleanup.Resource]] = {}
    for res, why in kept:
        grouped.setdefault(why, []).append(res)
    return list(grouped.items())


def _current_images() -> set[str]:
    """The refs this version builds for the sidecar and the built-in agent templates."""
    from bot_bottle import images

    return {images.sidecar_image().ref, *(images.agent_image(t).ref for t in images.templates())}
