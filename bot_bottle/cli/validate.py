"""``bot-bottle validate``: check every manifest file; exit 0 when all are valid, 2 otherwise."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from rich.text import Text

from bot_bottle.cli import common, output
from bot_bottle.errors import BotBottleError
from bot_bottle.manifest import Layout, Manifest, ManifestError, Session, ValidationReport, validate


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="check every agent and bottle file (exit 0 when valid, 2 when not)",
        description=("Check every manifest file: syntax, keys, types, extends, and each agent's bottle. "
                     "What start would refuse on this host (skills it does not have, a repo's ssh_key that "
                     "is not a readable file) and a secret written into a manifest as a literal are "
                     "warnings; a plugin provider an agent uses is loaded, and one that fails is an error."),
    )
    common.add_format(p)
    p.set_defaults(func=run)


def _agent_checks(layout: Layout, report: ValidationReport) -> tuple[list[str], list[ManifestError]]:
    """What only a whole agent shows: skills this host does not have (warnings: the files are
    valid, but `start` would refuse, as for host variables), the rest of what `start` refuses
    before building (``_preflight_problems``), a secret written as a literal (a warning, as the
    plan gives it) and a plugin provider that does not load (an error: no start could use it)."""
    from bot_bottle import plan as plan_mod, providers
    from bot_bottle.providers.plugins import PluginError

    failed = {e.path for e in report.errors}
    warnings: list[str] = []
    errors: list[ManifestError] = []
    # One session for all agents: a bottle chain many agents share is read and folded once.
    session = Session(layout, strict=False)  # a folder it cannot list is in the report already
    for name, ref in sorted(session.catalog.agents.items()):
        if ref.path in failed:
            continue
        try:
            manifest = session.load(name)
        except BotBottleError:
            continue  # its error is in the report already
        problem = common.skills_problem(manifest, None)  # as `start` without --cwd looks
        if problem is not None:
            warnings.append(problem)
        warnings += plan_mod.token_literal_warnings(manifest.bottle.env)
        warnings += _preflight_problems(manifest)
        template = manifest.bottle.template
        try:
            providers.resolve(template, plan_mod.contrib_dir(manifest))
        except PluginError as exc:
            errors.append(ManifestError(f"template '{template}': {exc}", path=ref.path, hint=exc.hint))
    return list(dict.fromkeys(warnings)), errors  # a bottle several agents use is named once


def _preflight_problems(manifest: Manifest) -> list[str]:
    """What `start` would refuse on this host before building anything (a repo's ssh_key that is
    not a readable file), as `start --dry-run` lists it: the files are valid, the host is not ready."""
    from bot_bottle import plan as plan_mod, preflight

    # The checks read the repos and the working tree, never the images: naming none spares
    # hashing the image build folders again for every agent.
    unused_images = plan_mod.ImageRefs(agent=None, sidecar="")
    try:
        plan = plan_mod.resolve(manifest, environ=dict(os.environ), images=unused_images)
    except BotBottleError:
        return []  # what resolving refuses is reported by `start` and `info` in full
    return [f"{manifest.agent.name}: start would refuse: {problem}"
            for problem in preflight.problems(plan, Path.home())]


def _with_column(error: ManifestError) -> str:
    """The error's one line, ``FILE:LINE: KEY: message``, with `` (at column N)`` after it for an
    error that names no key (a YAML syntax mistake, a byte that is not UTF-8): there the column is
    all that says where on the line to look; a key, found by its name, needs none. It goes last,
    so what scripts split off the front stays the same."""
    text = str(error)
    if error.column is None or error.key is not None or f"at column {error.column}" in error.detail:
        return text
    return f"{text} (at column {error.column})"


def run(args: argparse.Namespace) -> int:
    lay = common.layout()
    report = validate(lay)
    warnings, errors = _agent_checks(lay, report)
    report = dataclasses.replace(report, warnings=(*report.warnings, *warnings), errors=(*report.errors, *errors))
    if args.format == "json":
        output.print_json(
            {
                "ok": report.ok,
                "checked": [str(p) for p in report.checked],
                "errors": [
                    {
                        "path": str(e.path) if e.path else None,
                        "line": e.line,
                        # Added beside the rest: 1-based, where on the line; null where unknown.
                        "column": e.column,
                        "key": e.shown_key,
                        "message": e.detail,
                        "text": str(e),
                    }
                    for e in report.errors
                ],
                "warnings": list(report.warnings),
                # Folders that could not be listed: their manifests were not checked.
                "unreadable": [{"path": str(e.path), "message": e.detail, "text": str(e)} for e in report.unreadable],
            }
        )
        return 0 if report.ok else 2
    for warning in report.warnings:
        output.warn(warning)
    for error in (*report.unreadable, *report.errors):
        output.error(_with_column(error), hint=error.hint)
    count = len(report.checked)
    if report.ok:
        if count == 0:
            output.warn(f"no manifest files found (looked in {lay.home_dir} and ./.bot-bottle/agents); "
                        "`bot-bottle init` writes an example agent and bottle")
            return 0
        output.console().print(Text(f"{count} manifest file{'s' if count != 1 else ''} valid", style="green"))
        return 0
    blocked = set(report.not_folders)
    invalid = len({e.path for e in report.errors} - blocked)
    if invalid:
        output.err_console().print(Text(f"{invalid} of {count} manifest files invalid", style="red"))
    elif count:
        output.console().print(Text(f"{count} manifest file{'s' if count != 1 else ''} valid", style="green"))
    if blocked:
        # Not manifest files: what they hide is unknown, so they are not counted as invalid ones.
        many = len(blocked) != 1
        output.err_console().print(Text(f"{len(blocked)} path{'s' if many else ''} meant to be a manifest folder "
                                        f"{'are' if many else 'is'} not one, so the manifests meant to be in "
                                        f"{'them' if many else 'it'} were not checked", style="red"))
    if report.unreadable:
        # Said apart from the files: a folder is not a manifest, and what it holds is unknown.
        folders = len(report.unreadable)
        output.err_console().print(Text(f"{folders} folder{'s' if folders != 1 else ''} could not be read, so "
                                        f"the manifests in {'them' if folders != 1 else 'it'} were not checked",
                                        style="red"))
    return 2
